"""The bottleneck named from a failing stage's metrics: the deepest resource at its limit wins."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from capacity.analyze.bottleneck import bottleneck_text, name_bottlenecks, stage_bottleneck
from capacity.core.breach import Breach
from capacity.core.models import RunSummary, StageResult
from tests.helpers import make_stage_result

RESOURCES = {"puma_threads", "db_pool", "database", "cpu", "sidekiq", "generator", "unknown"}
PUMA_FULL = {"pool_busy_pct": 100.0, "pool_capacity_p50": 0.0, "backlog_max": 9.0}
POOL_WAITS = {"db_pool_waiting": 4.2, "db_pool_waiting_max": 7.0, "db_pool_busy": 3.0, "db_pool_size": 3.0}
LOCK_WAITS = {"db_lock_waits": 6.5, "db_lock_waits_max": 11.0, "db_connections_pct_max": 0.2}


def stage(index: int = 3, verdict: str = "fail", **kw: Any) -> StageResult:
    base: dict[str, Any] = {"target_rps": 100.0, "achieved_rps": 90.0, "p50_ms": 50.0, "p95_ms": 400.0, "p99_ms": 500.0}
    return make_stage_result(index=index, verdict=verdict, **{**base, **kw})


def test_lock_waits_name_the_database_even_when_the_pool_and_threads_are_full() -> None:
    b = stage_bottleneck(stage(metrics={**PUMA_FULL, **POOL_WAITS, **LOCK_WAITS}))
    assert b.resource == "database" and b.stage == 3
    assert "6.5 queries waiting on a lock" in b.evidence and "max 11" in b.evidence
    assert [a.split(":")[0] for a in b.also] == ["db_pool", "puma_threads"]


def test_connections_near_max_name_the_database() -> None:
    b = stage_bottleneck(stage(metrics={"db_connections_pct_max": 0.95, "db_lock_waits": 0.0}))
    assert b.resource == "database" and "95% of max_connections" in b.evidence


def test_checkout_waits_name_the_pool_over_the_threads_they_hold() -> None:
    b = stage_bottleneck(stage(metrics={**PUMA_FULL, **POOL_WAITS, "db_lock_waits": 0.0}))
    assert b.resource == "db_pool"
    assert "4.2 threads per task waiting" in b.evidence and "3 of 3 connections busy" in b.evidence


def test_an_exhausted_puma_pool_with_no_deeper_wait_names_the_threads() -> None:
    metrics = {**PUMA_FULL, "db_pool_waiting": 0.0, "db_lock_waits": 0.0, "cpu_pct": 30.0}
    b = stage_bottleneck(stage(metrics=metrics))
    assert b.resource == "puma_threads" and b.also == []
    assert b.evidence == "Puma threads 100% busy; backlog up to 9 requests"


def test_cpu_at_its_limit_comes_before_the_threads_it_keeps_busy() -> None:
    assert stage_bottleneck(stage(metrics={**PUMA_FULL, "cpu_pct": 97.0})).resource == "cpu"
    cpu_guard = Breach("cpu", "cpu_pct", "cpu 80% > 70%", 80.0, 70.0)
    assert stage_bottleneck(stage(metrics={"cpu_pct": 80.0}, breaches=[cpu_guard])).resource == "cpu"


def test_a_growing_queue_names_sidekiq_and_a_blind_queue_is_no_evidence() -> None:
    assert stage_bottleneck(stage(metrics={"queue_growth_per_s": 3.0})).resource == "sidekiq"
    blind = stage_bottleneck(stage(metrics={"cpu_pct": 20.0}, blind=["queue_size"]))
    assert blind.resource == "unknown" and "no data for queue_size" in blind.evidence


def test_the_generator_is_named_for_an_invalid_stage() -> None:
    b = stage_bottleneck(stage(verdict="invalid: generator", generator_cpu_pct=97.0, metrics=PUMA_FULL))
    assert b.resource == "generator" and "97%" in b.evidence


def test_only_failing_stages_are_named_in_stage_order_and_the_summary_carries_them() -> None:
    stages = [stage(2, metrics=POOL_WAITS), stage(0, "pass", metrics=PUMA_FULL), stage(1, metrics=PUMA_FULL)]
    found = name_bottlenecks(stages)
    assert [(b.stage, b.resource) for b in found] == [(1, "puma_threads"), (2, "db_pool")]
    summary = RunSummary(run_id="r", results_dir="d", experiment="e", target="t", bottleneck=found[0])
    dumped = summary.model_dump(mode="json")["bottleneck"]
    assert {k: dumped[k] for k in ("resource", "stage")} == {"resource": "puma_threads", "stage": 1}
    assert bottleneck_text(found[1]).startswith("db_pool (stage 2): 4.2 threads")
    assert bottleneck_text(None) == "not named: no stage failed"


figures = st.dictionaries(
    st.sampled_from(sorted({*PUMA_FULL, *POOL_WAITS, *LOCK_WAITS, "cpu_pct", "queue_growth_per_s"})),
    st.one_of(st.none(), st.floats(0, 500, allow_nan=False)),
)


@settings(derandomize=True, max_examples=150, deadline=None)
@given(figures, st.sampled_from(["fail", "invalid: generator", "pass"]))
def test_every_failing_stage_gets_exactly_one_known_resource(metrics: dict[str, float | None], verdict: str) -> None:
    found = name_bottlenecks([stage(5, verdict, metrics=metrics)])
    assert len(found) == (0 if verdict == "pass" else 1)
    for b in found:
        assert b.resource in RESOURCES and b.stage == 5 and b.evidence
        assert b.resource not in {a.split(":")[0] for a in b.also}


# ------------------------------------------------------------------------- across a scale series
def test_a_database_figure_rising_with_the_tasks_names_the_shared_resource() -> None:
    from capacity.analyze.shared_resource import shared_resource

    sizes = [
        (n, {"db_lock_waits": w, "db_connections_pct_max": 0.1 * n})
        for n, w in ((1, 0.2), (2, 0.9), (4, 3.1), (3, 1.8))
    ]
    found = shared_resource(sizes)
    assert found is not None and (found.resource, found.metric) == ("database", "db_lock_waits")
    assert found.values == {1: 0.2, 2: 0.9, 3: 1.8, 4: 3.1}
    assert "0.20 at 1, 0.90 at 2, 1.80 at 3, 3.10 at 4 task(s)" in found.evidence
    # not monotone, below the limit, too few sizes: nothing is named
    assert (
        shared_resource([(1, {"db_lock_waits": 0.2}), (2, {"db_lock_waits": 3.0}), (3, {"db_lock_waits": 1.0})]) is None
    )
    assert (
        shared_resource([(1, {"db_lock_waits": 0.01}), (2, {"db_lock_waits": 0.1}), (3, {"db_lock_waits": 0.3})])
        is None
    )
    assert shared_resource([(1, {"db_lock_waits": 0.2}), (2, {"db_lock_waits": 3.0})]) is None
