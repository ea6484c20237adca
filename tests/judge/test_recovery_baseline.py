"""Recovery is judged against the pre-run baseline (issue 21): a steady background queue is not ours."""

from __future__ import annotations

import time

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from capacity.core.signals import InterruptFlag
from capacity.judge.recovery import Baseline, backlog_limit, queue_breach, queue_limit
from capacity.search.baseline import steady_value
from capacity.search.recovery_wait import wait_for_recovery
from tests.helpers import make_experiment

STEADY = Baseline(queue_size=10.0, backlog=0.0, probe_p50_ms=8.0, measured_at="2026-12-03T12:00:00+00:00")


def test_a_steady_background_queue_counts_as_recovered() -> None:
    assert queue_limit(10.0) == pytest.approx(16.0)  # 10 + 10% + 5 jobs
    assert queue_breach(10.0, 0.0, STEADY) is None
    assert queue_breach(16.0, 0.0, STEADY) is None
    left = queue_breach(17.0, 0.0, STEADY)
    assert left is not None and left.code == "queue" and left.limit == pytest.approx(16.0)
    assert left.text == "job queue still 17 deep (baseline 10, limit 16)"


def test_without_a_baseline_the_absolute_rules_hold() -> None:
    assert queue_limit(None) == 5.0 and backlog_limit(None) == 0.0
    held = queue_breach(10.0, 0.0)
    assert held is not None and held.value == 10.0 and held.limit == 5.0
    assert queue_breach(None, 3.0, Baseline(None, 2.0, None, "")) is None  # ceil(2 x 1.1) = 3
    backlog = queue_breach(None, 4.0, Baseline(None, 2.0, None, ""))
    assert backlog is not None and backlog.code == "backlog" and backlog.limit == 3.0


@settings(derandomize=True, max_examples=100, deadline=None)
@given(base=st.floats(0, 10_000), extra=st.floats(0, 10_000))
def test_back_at_or_below_the_baseline_is_always_recovered(base: float, extra: float) -> None:
    b = Baseline(base, base, None, "")
    assert queue_breach(base, base, b) is None
    breach = queue_breach(queue_limit(base) + extra + 1.0, 0.0, b)
    assert breach is not None and breach.value is not None and breach.value > queue_limit(base)


def test_the_baseline_reads_each_groups_median_not_a_spike() -> None:
    frame = pd.DataFrame(
        {
            "metric": ["queue_size"] * 5 + ["backlog"],
            "group": ["*"] * 5 + ["web"],
            "t": [1.0, 2.0, 3.0, 4.0, 5.0, 1.0],
            "value": [10.0, 10.0, 400.0, 10.0, 11.0, 0.0],
        }
    )
    assert steady_value(frame, "queue_size") == 10.0
    assert steady_value(frame, "backlog") == 0.0
    assert steady_value(frame, "pool_capacity") is None and steady_value(None, "queue_size") is None


class _Driver:
    def probe_latency_ms(self, n: int = 3, path: str | None = None) -> float:
        return 8.0


class _SteadySource:
    """A job queue a steady ``depth`` deep, whatever the search does."""

    def __init__(self, depth: float) -> None:
        self.depth = depth

    def fetch_stage(self, window: object, wait: bool = True) -> object:
        frame = pd.DataFrame({"metric": ["queue_size"], "group": ["*"], "t": [time.time()], "value": [self.depth]})
        return type("SM", (), {"frame": frame})()


def _exp(timeout_s: float) -> object:
    return make_experiment(
        name="r", stages={"recovery_timeout_s": timeout_s}, metrics={"rollup_seconds": 1, "poll_interval_s": 0.1}
    )


def test_recovery_waits_for_the_baseline_not_for_an_empty_queue() -> None:
    exp = _exp(0.3)
    ok = wait_for_recovery(_Driver(), _SteadySource(10.0), 8.0, exp, InterruptFlag(), baseline=STEADY)  # type: ignore[arg-type]
    assert ok.ok
    stuck = wait_for_recovery(_Driver(), _SteadySource(10.0), 8.0, exp, InterruptFlag())  # type: ignore[arg-type]
    assert not stuck.ok and "job queue still 10 deep" in stuck.detail
    grown = wait_for_recovery(_Driver(), _SteadySource(40.0), 8.0, exp, InterruptFlag(), baseline=STEADY)  # type: ignore[arg-type]
    assert not grown.ok and grown.breach is not None and grown.breach.limit == pytest.approx(16.0)
