"""Server-metric guards yield breach records whose code is the rule's, never read back from the text."""

from __future__ import annotations

from capacity.core.breach import STAGE
from capacity.judge.server_guards import metric_guard_breaches
from capacity.plan.experiment import Guards

G = Guards(
    max_cpu_pct=85,
    max_mem_pct=90,
    min_pool_capacity=1,
    max_backlog=10,
    max_queue_latency_s=30,
    max_queue_growth_per_s=1,
)


def test_breaches_name_metric_and_group() -> None:
    agg: dict[str, float | None] = {
        "cpu_pct": 80.0,
        "cpu_pct[aa]": 91.0,
        "cpu_pct[bb]": 69.0,
        "mem_pct_max": 50.0,
        "pool_capacity_p50": 0.4,
        "pool_capacity_p50[aa]": 0.4,
        "pool_capacity_p50[bb]": 2.0,
        "backlog_max": None,
        "queue_latency_s_max": 12.0,
        "queue_growth_per_s": 3.2,
        "queue_growth_per_s[default]": 3.2,
        "queue_growth_per_s[mailers]": 0.1,
    }
    breaches = metric_guard_breaches(agg, G)
    assert [b.text for b in breaches] == [
        "cpu 91% > 85% (task aa)",
        "puma pool exhausted: median free threads 0.4 <= 1 (task aa)",
        "queue 'default' growing 3.2 jobs/s > 1",
    ]
    assert [(b.code, b.metric, b.scope, b.value, b.limit) for b in breaches] == [
        ("cpu", "cpu_pct", "aa", 91.0, 85.0),
        ("pool", "pool_capacity_p50", "aa", 0.4, 1.0),
        ("queue_growth", "queue_growth_per_s", "default", 3.2, 1.0),
    ]
    assert all(b.window == STAGE for b in breaches)
    assert metric_guard_breaches({"cpu_pct": float("nan"), "mem_pct_max": None}, G) == []
    off = Guards(max_cpu_pct=None, max_queue_growth_per_s=None, max_mem_pct=None, max_queue_latency_s=None)
    assert metric_guard_breaches(agg, off) == []


def test_every_rule_has_its_own_code() -> None:
    agg: dict[str, float | None] = {
        "cpu_pct": 99.0,
        "sidekiq_cpu_pct": 99.0,
        "mem_pct_max": 99.0,
        "pool_capacity_p50": 0.0,
        "backlog_max": 50.0,
        "queue_latency_s_max": 45.0,
        "queue_growth_per_s": 5.0,
    }
    codes = [b.code for b in metric_guard_breaches(agg, G)]
    assert codes == ["cpu", "sidekiq_cpu", "memory", "pool", "backlog", "queue_latency", "queue_growth"]
    latency = metric_guard_breaches({"queue_latency_s_max": 45.0}, G)[0]
    assert latency.text == "queue latency 45.0 s > 30 s" and latency.code == "queue_latency"


def test_memory_breach_on_a_task_labelled_cpu_is_coded_memory() -> None:
    """The old verdict guessed the code from the text: "memory 95% > 90% (task cpu-heavy)" read as cpu."""
    (b,) = metric_guard_breaches({"mem_pct_max[cpu-heavy]": 95.0}, G)
    assert b.text == "memory 95% > 90% (task cpu-heavy)"
    assert (b.code, b.metric, b.scope) == ("memory", "mem_pct_max", "cpu-heavy")
    (q,) = metric_guard_breaches({"queue_latency_s_max[cpu_jobs]": 40.0}, G)
    assert q.code == "queue_latency"
