"""The saturation estimator: a two-segment fit of goodput vs offered, held inside what the stages prove."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from capacity.analyze import analyse_run
from capacity.analyze.queueing import arrival_rate
from capacity.analyze.saturation import fit_saturation, saturated_mask
from capacity.analyze.table import normalise_stages
from capacity.testing import SyntheticSpec, synthetic_run


def _table(offered: list[float], goodput: list[float], **extra: list[float]) -> pd.DataFrame:
    return pd.DataFrame({"offered_rps": offered, "achieved_rps": goodput, **extra})


def test_plateau_is_the_goodput_it_held_exactly() -> None:
    fit = fit_saturation(normalise_stages(_table([20, 40, 60, 80, 100, 120, 140], [20, 40, 60, 80, 100, 100, 100])))
    assert fit.reached and fit.sag == 0.0
    assert fit.value == pytest.approx(100.0, abs=1e-9)
    assert fit.low == 100.0 and fit.high == 110.0  # 120 failed holding 100: a sag of at most 1 puts S <= 110
    assert "plateau" in fit.signal


def test_sag_is_fitted_back_to_where_goodput_stopped_following() -> None:
    # true S = 100 with goodput falling 0.5 per unit overload: 140 offered -> 80, 180 -> 60
    offered = [20, 40, 60, 80, 95, 140, 180]
    goodput = [20, 40, 60, 80, 95, 80, 60]
    fit = fit_saturation(normalise_stages(_table(offered, goodput)))
    assert fit.reached and fit.sag == pytest.approx(0.5, rel=1e-6)
    assert fit.fitted == pytest.approx(100.0, rel=1e-6)
    # the median of the saturated goodputs, the old estimate, would have said 70 (-30%); but no stage
    # delivered more than 95, so the measured figure is held there (the corner is in the signal)
    assert fit.value == fit.peak == 95.0
    assert "fit's corner is 100" in fit.signal


def test_value_stays_inside_the_measured_bracket() -> None:
    # noisy short stages above saturation report more than the target kept up with: never above `high`
    table = normalise_stages(
        _table(
            [50, 100, 150, 160, 170],
            [50, 100, 150, 150, 175],
            requests=[1000, 2000, 3000, 480, 510],  # the last two measured 3 s each
            error_ratio=[0, 0, 0, 0.06, 0.04],
        )
    )
    assert saturated_mask(table).tolist() == [False, False, False, True, True]
    fit = fit_saturation(table)
    assert fit.low == 150.0 and fit.high == 155.0  # 160 failed holding 150: S <= (150 + 160) / 2
    assert fit.low <= fit.value <= fit.high


def test_a_constant_error_rate_is_not_saturation_but_a_rise_in_errors_is() -> None:
    offered = [20, 40, 60, 80, 100]
    steady = normalise_stages(_table(offered, [0.95 * x for x in offered], error_ratio=[0.05] * 5))
    assert not saturated_mask(steady).any()
    assert not fit_saturation(steady).reached
    rising = normalise_stages(_table(offered, offered, error_ratio=[0, 0, 0, 0, 0.03]))
    assert saturated_mask(rising).tolist() == [False, False, False, False, True]


def test_wide_bracket_is_placed_by_the_utilisation_law() -> None:
    # a coarse ramp: kept up at 92, the next stage (150) overloaded and sagged; the pool metric knows
    truth = 100.0
    offered = [20.0, 40.0, 60.0, 92.0, 150.0]
    goodput = [20.0, 40.0, 60.0, 92.0, 90.0]
    pool = [100 * min(x, truth) / truth for x in goodput]
    a = analyse_run(_table(offered, goodput, pool_busy_pct=pool), n_boot=0)
    assert a.saturation.reached
    assert a.saturation.value == pytest.approx(truth, rel=1e-6)
    # above every goodput the stages delivered (92): the utilisation law's figure, and marked so
    assert a.saturation.extrapolated and "utilisation law" in a.saturation.method
    assert "placed by pool_busy_pct" in a.saturation.signal
    assert "kept up to 92" in a.saturation.note and "two-segment fit alone gives 92" in a.saturation.note
    # a narrow bracket keeps the measured value: the stages already pin it within 10%
    narrow = analyse_run(_table([20, 40, 60, 95, 100], [20, 40, 60, 95, 95], pool_busy_pct=[20, 40, 60, 95, 95]))
    assert narrow.saturation.value == pytest.approx(95.0, abs=1e-9)
    assert "bracket" not in narrow.saturation.signal


def test_queueing_fit_uses_the_planned_rate_not_the_counted_one() -> None:
    table = normalise_stages(_table([51, 98, 149], [51, 98, 149], target_rps=[50, 100, 150]))
    assert table.rate.tolist() == [51, 98, 149]
    assert arrival_rate(table).tolist() == [50, 100, 150]
    no_plan = normalise_stages(_table([51, 98, 149], [51, 98, 149]))
    assert arrival_rate(no_plan).tolist() == [51, 98, 149]


@pytest.mark.parametrize("adaptive", [False, True])
def test_synthetic_runs_mostly_within_5_percent(adaptive: bool) -> None:
    """A small sample of the benchmark (benchmarks/bench_saturation_estimates.py runs 200 per plan)."""
    from capacity.testing import random_spec

    rng = np.random.default_rng(7)
    errors = []
    for i in range(30):
        spec = random_spec(rng, seed=700 + i, adaptive=adaptive)
        stages, seconds = synthetic_run(spec)
        best = analyse_run(stages, seconds, n_boot=0).best_saturation
        if best.value is not None and (best.reached or best.extrapolated):
            errors.append(abs(best.value / spec.truth - 1))
    assert len(errors) >= 27
    assert float(np.mean(np.array(errors) <= 0.05)) >= 0.85
    assert max(errors) < 0.15


def test_sagging_single_overload_stage_is_a_bracket_not_a_figure() -> None:
    spec = SyntheticSpec(servers=16, service_s=0.1, start_frac=0.2, growth=1.6, degrade=0.3, seed=3, noise=0.0)
    stages, _ = synthetic_run(spec)
    fit = fit_saturation(normalise_stages(stages))
    assert fit.reached and fit.low <= spec.truth <= fit.high
    assert math.isfinite(fit.high)
