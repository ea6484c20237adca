"""Our parser on what the sandbox's Datadog-compatible endpoint answers (its pure query function)."""

from __future__ import annotations

import pytest

from capacity.observe.aggregate import stage_aggregates, tidy
from capacity.observe.queries import resolve_queries
from capacity.observe.v1_answers import parse_v1
from capacity.plan.experiment import load_experiment

ddquery = pytest.importorskip("capacity.sandbox.query_eval")
metricstore = pytest.importorskip("capacity.sandbox.metricstore")


def test_default_sandbox_queries_parse_into_aggregates(repo) -> None:  # type: ignore[no-untyped-def]
    exp = load_experiment(repo / "experiments" / "sandbox.toml")
    queries = resolve_queries(exp.metrics)
    store = metricstore.MetricStore()
    t0 = 1_800_000_000
    for task, cpu in (("t1", 20.0), ("t2", 40.0)):
        tags = [
            "ecs_cluster_name:sandbox",
            "ecs_service:clinician-workflow-app",
            f"task_arn:{task}",
            "ecs_container_name:app",
        ]
        for s in range(20):
            store.add("ecs.fargate.cpu.percent", tags, t0 + s, cpu)
            store.add("ecs.fargate.mem.usage", tags, t0 + s, 100 * 2**20)
            store.add("ecs.fargate.mem.limit", tags, t0 + s, 512 * 2**20)
            store.add("puma.pool_capacity", tags, t0 + s, 1.0)
            store.add("puma.max_threads", tags, t0 + s, 4.0)
    q = ["ecs_cluster_name:sandbox", "ecs_service:clinician-workflow-sidekiq", "queue:default"]
    for s in range(20):
        store.add("sidekiq.enqueued", q[:2], t0 + s, 2.0 * s)  # Sidekiq Enterprise's total of all queues
        store.add("sidekiq.jobs.count", q, t0 + s, 7.0)
    names = list(queries)
    body = ddquery.query_response(store, ",".join(queries.values()), t0, t0 + 19)
    answer = parse_v1(body, names, list(queries.values()))
    assert not answer.failed and not answer.warnings
    frame = tidy([(p.name, p.group, p.t, p.value) for p in answer.points], 0)
    a = stage_aggregates(frame, answer.intervals, max_threads=4)
    assert a["cpu_pct"] == pytest.approx(30.0) and a["cpu_pct_max"] == pytest.approx(40.0)
    assert a["mem_pct"] == pytest.approx(100 / 512 * 100) and a["mem_mb_max"] == pytest.approx(100.0)
    assert a["pool_busy_pct"] == pytest.approx(75.0)
    assert a["queue_growth_per_s"] == pytest.approx(2.0)
    assert a["jobs_per_s"] == pytest.approx(7.0)
