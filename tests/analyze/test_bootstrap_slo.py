"""Unit tests of the bootstrap intervals and the SLO capacity rule, on constructed data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from capacity.analyze.bootstrap import SecondResampler, bootstrap_interval
from capacity.analyze.slo import passes_above_first_failure, slo_capacity_point
from capacity.analyze.table import StageTable, normalise_stages
from capacity.plan.experiment import Guards

RATES = (50.0, 100.0, 150.0)


def _run(seconds_per_stage: int, seed: int = 0) -> tuple[StageTable, pd.DataFrame]:
    """Stages at RATES whose measured seconds are Poisson counts (goodput = offered, latency noisy)."""
    rng = np.random.default_rng(seed)
    rows, seconds = [], []
    for index, rate in enumerate(RATES):
        offered = rng.poisson(rate, seconds_per_stage)
        p95 = 100.0 * np.exp(rng.normal(0, 0.2, seconds_per_stage))
        for t in range(seconds_per_stage):
            seconds.append(
                {"stage": index, "phase": "measure", "offered": offered[t], "ok": offered[t], "p95_ms": p95[t]}
            )
        rows.append(
            {
                "index": index,
                "target_rps": rate,
                "offered_rps": float(offered.mean()),
                "achieved_rps": float(offered.mean()),
                "p95_ms": float(p95.mean()),
                "verdict": "pass",
            }
        )
    return normalise_stages(pd.DataFrame(rows)), pd.DataFrame(seconds)


def _goodput_at(stage: int):  # type: ignore[no-untyped-def]
    return lambda t: float(t.achieved[stage])


def _interval(seconds_per_stage: int, seed: int, n_boot: int = 200) -> tuple[float, float, float]:
    table, seconds = _run(seconds_per_stage)
    resampler = SecondResampler(table, seconds)
    assert resampler.by_seconds
    lo, hi, used = bootstrap_interval(_goodput_at(1), resampler.replicates(n_boot, seed))
    assert lo is not None and hi is not None and used == n_boot
    return lo, hi, float(table.achieved[1])


def test_bootstrap_interval_contains_the_point_estimate() -> None:
    for seed in range(5):
        lo, hi, point = _interval(30, seed)
        assert lo <= point <= hi


def test_bootstrap_interval_shrinks_with_more_seconds() -> None:
    lo_short, hi_short, _ = _interval(10, seed=1)
    lo_long, hi_long, _ = _interval(250, seed=1)
    assert hi_long - lo_long < 0.5 * (hi_short - lo_short)


def test_bootstrap_is_deterministic_by_seed() -> None:
    assert _interval(30, seed=7) == _interval(30, seed=7)
    assert _interval(30, seed=7) != _interval(30, seed=8)


def test_bootstrap_refuses_an_interval_from_too_few_values() -> None:
    table, seconds = _run(30)
    replicates = SecondResampler(table, seconds).replicates(40, 0)
    assert bootstrap_interval(lambda t: None, replicates) == (None, None, 0)
    assert bootstrap_interval(_goodput_at(0), []) == (None, None, 0)


def _table(p95: list[float], verdicts: list[str] | None = None, rates: list[float] | None = None) -> StageTable:
    rates = rates or [50.0, 100.0, 150.0, 200.0][: len(p95)]
    frame = {"target_rps": rates, "achieved_rps": rates, "p95_ms": p95}
    frame["verdict"] = verdicts or ["pass" if p <= 250 else "fail" for p in p95]  # type: ignore[assignment]
    return normalise_stages(pd.DataFrame(frame))


GUARDS = Guards(slo_p95_ms=250, max_cpu_pct=None)  # type: ignore[call-arg]


def test_slo_capacity_is_exact_where_the_guard_crosses_its_limit() -> None:
    # p95 200 ms at 100 rps (excess 0.8), 400 ms at 150 rps (1.6): 1.0 is a quarter of the way up
    value, reached, signal = slo_capacity_point(_table([100.0, 200.0, 400.0]), GUARDS)
    assert reached and signal == "p95_ms"
    assert value == pytest.approx(100.0 + 0.25 * 50.0)


def test_slo_capacity_is_at_most_the_lowest_failing_rate() -> None:
    # a pass at 200 rps above the failure at 150 is noise: it never raises the capacity
    table = _table([100.0, 200.0, 400.0, 200.0], ["pass", "pass", "fail", "pass"])
    value, reached, _ = slo_capacity_point(table, GUARDS)
    assert reached and value is not None and value <= 150.0
    assert passes_above_first_failure(table, GUARDS) == [200.0]
    # stages run out of rate order (adaptive bisection) give the same answer
    shuffled = _table([400.0, 100.0, 200.0], rates=[150.0, 50.0, 100.0])
    assert slo_capacity_point(shuffled, GUARDS)[0] == pytest.approx(112.5)


def test_slo_capacity_when_nothing_failed_or_nothing_passed() -> None:
    assert slo_capacity_point(_table([100.0, 200.0]), GUARDS) == (100.0, False, "all stages passed")
    assert slo_capacity_point(_table([300.0, 400.0]), GUARDS) == (None, True, "no stage met every guard")


def test_a_recorded_failure_without_a_checkable_guard_is_the_bound() -> None:
    # the runner failed the 150 rps stage on a window we cannot recompute: capacity is the pass below
    value, reached, signal = slo_capacity_point(_table([100.0, 120.0, 130.0], ["pass", "pass", "fail"]), GUARDS)
    assert reached and value == 100.0 and signal.startswith("verdict of the stage at 150")
