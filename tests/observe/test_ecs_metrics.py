"""Issue 15 items 2-5 against the fake Datadog: ECS's CPU figure, per-metric intervals, open-source
Sidekiq, Puma exhaustion, blind guards."""

from __future__ import annotations

import math
import time
from typing import Any

import pytest

from capacity.core.errors import CapacityError, ExperimentError
from capacity.judge.server_guards import blind_queries, metric_guard_breaches
from capacity.observe import StageWindow, build_source
from capacity.observe.aggregate import stage_aggregates, tidy
from capacity.observe.queries import query_rollups, resolve_queries
from capacity.plan.experiment import Guards
from capacity.search.require_metrics import require_guard_metrics
from tests.observe.conftest import API_KEY, APP_KEY, ARN, SIDECARS, TASKS, make_exp, past_window, populate, task_cpu_pct
from tests.observe.fake_datadog import FakeDatadog


def _source(fake: FakeDatadog, **metrics: Any) -> Any:
    exp = make_exp(fake.url, **metrics)
    return build_source(exp, api_key=API_KEY, app_key=APP_KEY)


def test_fargate_task_cpu_agrees_with_cloudwatch_service_cpu(fake: FakeDatadog) -> None:
    """One stage served both ways: the agent's per-container percent summed per task over the task's
    2 vCPUs, and CloudWatch's ``CPUUtilization`` (CPU used by the service's tasks / CPU reserved)."""
    w = past_window()
    populate(fake, w.start_s - 30, w.end_s + 10)
    used_vcpu = sum(v["cpu"] + sum(c for c, _ in SIDECARS.values()) for v in TASKS.values()) / 100.0
    service_pct = 100.0 * used_vcpu / (2 * len(TASKS))
    scope = ["clustername:staging", "servicename:cw-app"]
    secs = range(int(w.start_s) - 120, math.ceil(w.end_s) + 60)
    fake.add("aws.ecs.service.cpuutilization", scope, [(t, service_pct) for t in secs], "percent")
    fargate = _source(fake).fetch_stage(w, wait=False)
    cloudwatch = _source(fake, preset="cloudwatch").fetch_stage(w, wait=False)
    assert fargate.aggregates["cpu_pct"] == pytest.approx(cloudwatch.aggregates["cpu_pct"], abs=0.05)
    assert fargate.aggregates["cpu_pct"] == pytest.approx(27.0)  # (44 + 64) / 2 vCPU / 2 tasks
    assert fargate.aggregates["cpu_container_pct"] == pytest.approx(50.0)  # the raw app container, 100 = 1 vCPU
    assert fargate.aggregates["sidekiq_cpu_pct"] == pytest.approx(30.0)  # its own task size: 1 vCPU
    # memory is the app container's alone, not averaged with the sidecars
    assert fargate.aggregates["mem_mb_max"] == pytest.approx(600.0)
    assert fargate.aggregates["cpu_pct[bbbb2222]"] == pytest.approx(task_cpu_pct("bbbb2222"))


def _every(seconds: int, t0: float, t1: float) -> range:
    return range(math.ceil(t0 / seconds) * seconds, math.ceil(t1) + 1, seconds)


def test_thirty_second_metrics_complete_in_one_poll_at_a_twenty_second_rollup(fake: FakeDatadog) -> None:
    """The staging file's 20-s rollup: Sidekiq Enterprise's 30-s metrics read at 30 s, agent checks at 20 s."""
    now = time.time()
    w = StageWindow(0, *(past_window(seconds=90, ago=40).start, past_window(seconds=90, ago=40).end))
    sk = ["ecs_cluster_name:staging", "ecs_service:cw-sidekiq", "queue:default"]
    for metric in ("sidekiq.queue.size", "sidekiq.queue.latency", "sidekiq.jobs.count"):
        fake.add(metric, sk, [(t, 3.0) for t in _every(30, w.start_s - 60, now)])
    app = ["ecs_cluster_name:staging", "ecs_service:cw-app", f"task_arn:{ARN}aaaa1111", "ecs_container_name:app"]
    for metric in ("puma.pool_capacity", "puma.backlog", "ecs.fargate.cpu.percent"):
        fake.add(metric, app, [(t, 1.0) for t in _every(15, w.start_s - 60, now)])
    only = {"queries": {"mem_usage": None, "mem_limit": None, "max_threads": None, "sidekiq_cpu_pct": None}}
    metrics: dict[str, Any] = {"rollup_seconds": 20, "intervals": {}, "poll_deadline_s": 30, **only}
    src = _source(fake, **metrics)
    rollups = query_rollups(make_exp(fake.url, **metrics).metrics)
    assert rollups["queue_size"] == 30 and rollups["pool_capacity"] == 20
    started = time.monotonic()
    sm = src.fetch_stage(w)
    assert sm.calls == 1 and time.monotonic() - started < 5
    assert set(sm.completeness.values()) == {1.0} and sm.seconds_to_complete is not None
    # forced to 20-s buckets, a 30-s metric leaves every third bucket empty: never complete
    forced = _source(fake, **{**metrics, "intervals": {"sidekiq.": 20}, "poll_deadline_s": 0})
    late = forced.fetch_stage(w)
    assert late.completeness["queue_size"] < 1.0 and late.seconds_to_complete is None


def test_open_source_sidekiq_reads_queue_length_from_the_redis_check(fake: FakeDatadog) -> None:
    w = past_window()
    redis = ["ecs_cluster_name:staging", "ecs_service:cw-sidekiq", "key:queue:default", "key_type:list"]
    other = ["ecs_cluster_name:staging", "ecs_service:cw-sidekiq", "key:retry", "key_type:zset"]
    secs = range(int(w.start_s) - 30, math.ceil(w.end_s) + 10)
    fake.add("redis.key.length", redis, [(t, 5 + 2.0 * (t - w.start_s)) for t in secs])
    fake.add("redis.key.length", other, [(t, 999.0) for t in secs])
    exp = make_exp(fake.url, sidekiq="oss")
    q = resolve_queries(exp.metrics)
    assert q["queue_size"].startswith(
        "max:redis.key.length{ecs_cluster_name:staging,ecs_service:cw-sidekiq,key:queue:*}"
    )
    assert "jobs_processed" not in q and q["queue_latency_s"].startswith("max:sidekiq.queue.latency{")
    own = make_exp(fake.url, sidekiq="oss", queries={"queue_size": "max:my.depth{*} by {queue}"})
    assert resolve_queries(own.metrics)["queue_size"].startswith("max:my.depth{*}")  # the file's query wins
    sm = _source(fake, sidekiq="oss").fetch_stage(w, wait=False)
    assert sm.aggregates["queue_growth_per_s"] == pytest.approx(2.0, rel=0.05)
    assert sm.aggregates["queue_size_max[queue:default]"] < 999
    (breach,) = metric_guard_breaches(sm.aggregates, Guards(max_queue_growth_per_s=1.0, max_queue_latency_s=None))
    assert breach.code == "queue_growth" and breach.scope == "queue:default"


def _pool_frame(values: list[float]) -> Any:
    group = f"task_arn:{ARN}aaaa1111"
    return tidy([("pool_capacity", group, 100.0 + 15 * i, v) for i, v in enumerate(values)], 0)


def test_pool_guard_fires_at_zero_when_free_threads_stay_exhausted() -> None:
    """``min_pool_capacity = 0`` used to be unreachable (``value < 0``): now at or below, on the median."""
    g = Guards(min_pool_capacity=0)
    exhausted = stage_aggregates(_pool_frame([0, 0, 1, 0, 0, 2]), {"pool_capacity": 15})
    (b,) = metric_guard_breaches(exhausted, g)
    assert (b.code, b.metric, b.value, b.limit, b.scope) == ("pool", "pool_capacity_p50", 0.0, 0.0, "aaaa1111")
    assert b.text == "puma pool exhausted: median free threads 0.0 <= 0 (task aaaa1111)"
    blips = stage_aggregates(_pool_frame([3, 0, 2, 4, 0, 3]), {"pool_capacity": 15})  # busy moments, not exhausted
    assert metric_guard_breaches(blips, g) == []
    (q,) = metric_guard_breaches({"backlog_max": 12.0}, Guards(max_backlog=10))
    assert q.code == "backlog" and q.text == "puma backlog 12 > 10 requests queued"


def test_blind_guards_are_named_and_late_ones_are_pending() -> None:
    g = Guards(min_pool_capacity=0, max_backlog=5, max_cpu_pct=85, max_queue_latency_s=None)
    configured = ["cpu_pct", "pool_capacity", "backlog", "queue_size", "mem_usage", "mem_limit", "sidekiq_cpu_pct"]
    assert blind_queries(g, configured, no_data=["pool_capacity", "cpu_container_pct"]) == ["pool_capacity"]
    assert blind_queries(g, [n for n in configured if n != "backlog"], no_data=[]) == ["backlog"]  # no query at all
    assert blind_queries(g, configured, no_data=["cpu_pct"], pending=["cpu_pct"]) == []  # late CloudWatch: not yet
    cw = ["cpu_pct", "mem_pct", "mem_pct_max", "pool_capacity", "backlog", "queue_size", "sidekiq_cpu_pct"]
    assert blind_queries(g, cw, no_data=["mem_pct_max"]) == ["mem_pct_max"]  # memory read as a percentage


def test_misspelt_metric_is_blind_at_preflight_and_in_the_stage(fake: FakeDatadog) -> None:
    w = past_window()
    populate(fake, time.time() - 300, time.time())
    metrics: dict[str, Any] = {"queries": {"pool_capacity": "avg:puma.pool_capacty{$app_scope} by {task_arn}"}}
    exp = make_exp(fake.url, poll_deadline_s=1, **metrics)  # --require-metrics waits this long for a series
    src = build_source(exp, api_key=API_KEY, app_key=APP_KEY)
    assert src is not None
    src.preflight()
    assert src.empty_queries() == ["pool_capacity"]
    with pytest.raises(CapacityError, match=r"--require-metrics: .*pool_capacity \('avg:puma\.pool_capacty\{"):
        require_guard_metrics(src, exp.with_changes(guards={"min_pool_capacity": 0}))
    require_guard_metrics(src, exp.with_changes(guards={"min_pool_capacity": None}))  # no guard reads it
    sm = src.fetch_stage(w, wait=False)
    assert "pool_capacity" in sm.missing
    assert blind_queries(Guards(min_pool_capacity=0), sm.completeness, sm.missing, sm.pending) == ["pool_capacity"]


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("app_containr", "web", "metrics.app_containr.*unknown key"),
        ("intervals", {"puma.": "fast"}, "metrics.intervals.puma."),
        ("intervals", {"puma.": 0}, "metrics.intervals.puma."),
        ("sidekiq", "pro", "metrics.sidekiq"),
        ("dashboard_url", "app.ddog-gov.com/dashboard/x", "metrics.dashboard_url.*http"),
    ],
)
def test_new_metrics_keys_are_validated(key: str, value: Any, message: str) -> None:
    with pytest.raises(ExperimentError, match=message):
        make_exp("http://127.0.0.1:9", **{key: value})


def test_sidekiq_task_size_defaults_to_the_app_task_size() -> None:
    exp = make_exp("http://127.0.0.1:9").with_changes(
        cluster={"cpu_units_per_task": 512, "sidekiq_cpu_units_per_task": None}
    )
    assert exp.cluster.app_vcpus == 0.5 and exp.cluster.sidekiq_vcpus == 0.5
    with pytest.raises(ExperimentError, match=r"cluster\.sidekiq_cpu_units_per_task"):
        exp.with_changes(cluster={"sidekiq_cpu_units_per_task": "big"})
