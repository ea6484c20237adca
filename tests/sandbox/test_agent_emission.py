"""The sandbox publishes what the Datadog agent publishes (issue 21): the integrations' names, types and
units from the shipped metadata, custom metrics declared as such, and the agent's tag cardinality."""

from __future__ import annotations

import time

from capacity.observe.catalog import agent_metrics
from capacity.sandbox import SandboxConfig, run_sandbox
from capacity.sandbox.agent_tags import check_tags
from capacity.sandbox.metricstore import METRICS
from tests.sandbox.conftest import query

CUSTOM = {
    "puma.requests.rejected",
    "sidekiq.queue.size",
    "sidekiq.queue.latency",
    "sidekiq.jobs.enqueued",
    "trace.rack.request.hits",
    "trace.rack.request.errors",
    "trace.rack.request.duration",
}
"""What no agent integration emits (what a team publishes, APM's trace metrics, the stand-in's own)."""


def test_every_published_metric_has_the_metadatas_type_and_unit_or_is_declared_custom() -> None:
    known = agent_metrics()
    for name, info in METRICS.items():
        if name in CUSTOM:
            assert name not in known, name
            continue
        assert name in known, f"{name}: neither an agent metric nor declared custom"
        assert (info.kind, info.unit or "") == (known[name].kind, known[name].unit), name


def test_check_tags_drop_the_task_only_at_low_cardinality() -> None:
    tags = ["ecs_cluster_name:c", "ecs_service:s", "task_arn:arn:aws:ecs:r:1:task/c/abc"]
    assert check_tags(tags, "orchestrator") == tags
    assert check_tags(tags, "low") == ["ecs_cluster_name:c", "ecs_service:s"]


def _groups(base_url: str, metric: str, start: int) -> list[str]:
    body = query(base_url, f"avg:{metric}{{*}} by {{task_arn}}", start, int(time.time()))
    return [",".join(s["tag_set"]) for s in body["series"]]


def test_at_low_cardinality_puma_check_metrics_collapse_but_the_fargate_check_keeps_each_task() -> None:
    """The default (orchestrator) keeps one Puma group per task: ``test_datadog_client`` checks that."""
    cfg = SandboxConfig(app_tasks=2, sidekiq_tasks=1, tag_cardinality="low")
    with run_sandbox(cfg) as sb:
        start = int(time.time()) - 1
        time.sleep(2.6)  # two reporting seconds
        cpu = _groups(sb.base_url, "ecs.fargate.cpu.percent", start)
        pool = _groups(sb.base_url, "puma.pool_capacity", start)
        body = query(sb.base_url, "avg:ecs.fargate.mem.cache{*}", start, int(time.time()))
        assert body["series"] and body["series"][0]["unit"][0]["name"] == "byte"
        enqueued = query(sb.base_url, "max:sidekiq.enqueued{*}", start, int(time.time()))
        assert enqueued["series"], "Sidekiq Enterprise's documented total"
    assert len(cpu) == 3 and all("N/A" not in g for g in cpu)  # the Fargate check: always per task
    assert pool == ["task_arn:N/A"]
