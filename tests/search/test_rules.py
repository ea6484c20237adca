"""The search's stop rules and recovery wait on their own: no load, no sandbox, tenths of a second."""

from __future__ import annotations

import time

import pandas as pd
import pytest

from capacity.core.models import StageResult
from capacity.core.outcomes import StopReason, guard_stop
from capacity.core.signals import InterruptFlag
from capacity.search import stop_rules as rules
from capacity.search.recovery_wait import latest_value, queues_still_full, wait_for_recovery
from tests.helpers import make_experiment, make_stage_result


def stage(index: int, verdict: str, rate: float = 100.0) -> StageResult:
    return make_stage_result(
        index=index,
        target_rps=rate,
        p50_ms=10.0,
        p95_ms=20.0,
        p99_ms=30.0,
        verdict=verdict,
    )


def experiment(recovery_timeout_s: float = 0.6) -> object:
    return make_experiment(
        name="rules",
        stages={"recovery_timeout_s": recovery_timeout_s, "recovery_latency_factor": 2.0},
        metrics={"source": "none", "rollup_seconds": 1, "poll_interval_s": 1.0},
    )


# ------------------------------------------------------------------------------------ stop rules
def test_interrupt_stops_whatever_the_verdict() -> None:
    d = rules.after_stage(stage(0, "pass"), interrupted=True)
    assert d.stop == "interrupted" and not d.judged
    assert rules.after_stage(stage(0, "interrupted"), interrupted=False).stop == "interrupted"


def test_generator_bound_stage_stops_the_run_and_is_never_judged() -> None:
    d = rules.after_stage(stage(3, "invalid: generator"), interrupted=False)
    assert d.stop == "generator"
    assert not d.judged
    assert d.warning is not None and "stage 3" in d.warning and "--workers" in d.warning


def test_lost_worker_sets_the_stage_aside_and_goes_on() -> None:
    d = rules.after_stage(stage(2, "invalid: worker lost"), interrupted=False)
    assert d.stop is None
    assert not d.judged
    assert d.warning == "stage 2 lost a load worker"


@pytest.mark.parametrize("verdict", ["pass", "fail"])
def test_a_judged_stage_goes_to_the_strategy(verdict: str) -> None:
    d = rules.after_stage(stage(1, verdict), interrupted=False)
    assert d == rules.AfterStage()


@pytest.mark.parametrize(
    ("passed", "strategy", "strategy_stop", "stops"),
    [
        (True, "geometric", "", False),
        (False, "geometric", "", True),
        (False, "linear", "", True),
        (False, "adaptive", "", False),  # narrows below the failing rate instead
        (False, "adaptive", StopReason.FIRST_STAGE_FAILED, True),
        (True, "adaptive", StopReason.FIRST_STAGE_FAILED, False),
    ],
)
def test_failure_stops_a_geometric_ramp_but_narrows_an_adaptive_search(
    passed: bool, strategy: str, strategy_stop: str, stops: bool
) -> None:
    assert rules.stops_on_failure(passed, strategy=strategy, strategy_stop_reason=strategy_stop) is stops


def test_budget_refuses_a_stage_that_would_end_past_it() -> None:
    assert not rules.over_budget(100.0, 20.0, 120.0)
    assert rules.over_budget(100.1, 20.0, 120.0)
    assert "max_duration_s (120 s)" in rules.budget_warning(120.0)


def test_guard_reason_names_the_first_breach() -> None:
    assert guard_stop("p95") == "guard:p95"
    assert guard_stop(None) == "guard"


def test_resolution_names_the_guard_and_rate_that_bounded_it() -> None:
    results = [stage(0, "pass", 50), stage(1, "fail", 200), stage(2, "pass", 100), stage(3, "fail", 150)]
    assert rules.resolution_bound(results, {1: "p95", 3: "errors"}) == "guard:p95 at 200/s"
    assert rules.resolution_bound(results[:1], {}) == ""


# --------------------------------------------------------------------------------------- recovery
class FakeDriver:
    """Probe latencies from a list (the last one repeats)."""

    def __init__(self, latencies: list[float | None]) -> None:
        self.latencies = latencies
        self.calls = 0

    def probe_latency_ms(self, n: int = 3, path: str | None = None) -> float | None:
        value = self.latencies[min(self.calls, len(self.latencies) - 1)]
        self.calls += 1
        return value


class FakeSource:
    """A metrics source whose job queue drains by ``step`` jobs per query."""

    def __init__(self, depth: float, step: float) -> None:
        self.depth, self.step, self.queries = depth, step, 0

    def fetch_stage(self, window: object, wait: bool = True) -> object:
        self.queries += 1
        value = max(0.0, self.depth - self.step * (self.queries - 1))
        frame = pd.DataFrame({"metric": ["queue_size"], "group": ["default"], "t": [time.time()], "value": [value]})
        return type("SM", (), {"frame": frame})()


def test_recovers_once_latency_is_back_near_baseline() -> None:
    driver = FakeDriver([300.0, 120.0, 15.0])
    out = wait_for_recovery(driver, None, 10.0, experiment(), InterruptFlag())  # type: ignore[arg-type]
    assert out.ok and out.breach is None and out.detail == ""
    assert driver.calls == 3


def test_no_recovery_names_what_still_held() -> None:
    start = time.monotonic()
    out = wait_for_recovery(FakeDriver([90.0]), None, 10.0, experiment(0.5), InterruptFlag())  # type: ignore[arg-type]
    assert not out.ok
    assert out.breach is not None and out.breach.code == "latency" and out.breach.value == 90.0
    assert out.detail == "target did not recover within 0.5 s: latency 90 ms (baseline 10 ms)"
    assert time.monotonic() - start < 2.0


def test_a_deep_job_queue_holds_recovery_even_at_baseline_latency() -> None:
    out = wait_for_recovery(
        FakeDriver([10.0]),
        FakeSource(depth=500, step=0),  # type: ignore[arg-type]
        10.0,
        experiment(0.4),  # type: ignore[arg-type]
        InterruptFlag(),
    )
    assert not out.ok
    assert out.breach is not None and out.breach.code == "queue" and "job queue still 500 deep" in out.detail


def test_interrupt_ends_the_wait_at_once() -> None:
    flag = InterruptFlag()
    flag.set("SIGINT")
    start = time.monotonic()
    out = wait_for_recovery(FakeDriver([500.0]), None, 10.0, experiment(30.0), flag)  # type: ignore[arg-type]
    assert not out.ok and time.monotonic() - start < 1.0


def test_queue_judged_by_each_groups_latest_point() -> None:
    frame = pd.DataFrame(
        {
            "metric": ["queue_size"] * 4 + ["backlog"],
            "group": ["a", "a", "b", "b", "web"],
            "t": [1.0, 2.0, 1.0, 2.0, 2.0],
            "value": [900.0, 3.0, 1.0, 4.0, 0.0],
        }
    )
    assert latest_value(frame, "queue_size") == 4.0  # a's old 900 no longer counts
    assert latest_value(frame, "backlog") == 0.0
    assert latest_value(frame, "pool_capacity") is None
    assert latest_value(None, "queue_size") is None


def test_queues_unknown_without_a_source() -> None:
    assert queues_still_full(None) is None
