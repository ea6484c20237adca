"""Issue 15 item 7 on the real Puma + Sidekiq + Redis stack with the *default* queries: normalised task
CPU beside the raw container CPU, Puma's pool and backlog, the Redis queue length (open-source Sidekiq
preset), the pool and backlog guards at 1.3x capacity, and a misspelt metric reported blind."""

from __future__ import annotations

from pathlib import Path

import pytest
from rich.console import Console

from capacity.search import SearchOptions, run_search
from tests.helpers import make_experiment
from tests.sandbox.test_stack_puma import FORMULA_RPS, needs_stack

pytestmark = [pytest.mark.slow, needs_stack]


def test_one_overloaded_stage_reads_the_stack_as_ecs_and_the_agent_would(tmp_path: Path) -> None:
    base = make_experiment(builtin=True)
    rate = FORMULA_RPS * 1.3
    exp = base.with_changes(
        sandbox={"stack": "puma", "app_tasks": 2, "threads": 4, "service_ms": 50.0, "service_dist": "const"},
        cluster={"cpu_units_per_task": 2048, "sidekiq_cpu_units_per_task": 1024},
        guards={
            "slo_p95_ms": None,
            "max_cpu_pct": None,
            "min_goodput_ratio": 0.01,
            "max_dropped_ratio": 1.0,
            "min_pool_capacity": 0,
            "max_backlog": 0,
            "max_queue_latency_s": 30.0,
            "max_queue_growth_per_s": None,
        },
        metrics={
            "sidekiq": "oss",
            "queue_keys": ["queue:default"],  # listed: an empty queue (no redis.key.length point) reads 0
            "queries": {"queue_latency_s": "max:sidekiq.queue.latncy{$queue_scope} by {queue}"},  # misspelt
        },
        stages={"strategy": "linear", "start_rps": rate, "max_rps": rate, "stage_seconds": 6.0, "warmup_seconds": 1.0},
    )
    summary = run_search(
        exp,
        options=SearchOptions(results_root=tmp_path, json_mode=True, write_report=False),
        console=Console(quiet=True),
    )
    (stage,) = summary.stages
    m = stage.metrics
    for key in ("cpu_pct", "cpu_container_pct", "pool_capacity", "pool_capacity_p50", "backlog_max", "queue_size_max"):
        assert m.get(key) is not None, (key, m)
    # task CPU = (Puma container + sidecars) / 2 vCPUs: at least half the raw container figure, and small sidecars
    assert m["cpu_container_pct"] / 2 <= m["cpu_pct"] <= m["cpu_container_pct"] / 2 + 5.0, m
    assert m["pool_capacity_p50"] == 0.0 and m["backlog_max"] > 0
    codes = {b.code for b in stage.breaches}
    assert {"pool", "backlog"} <= codes, stage.reasons
    assert stage.blind == ["queue_latency_s"]
    assert "blind guard(s), no data for: queue_latency_s" in stage.reasons
    assert any("blind guard(s), no data for: queue_latency_s" in w for w in summary.warnings)
