"""analyse_run on synthetic M/M/c runs with a known truth, and on bad or thin input."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from capacity.analyze import analyse_run
from capacity.analyze.queueing import erlang_c, sojourn_quantile
from capacity.core.errors import CapacityError
from capacity.plan.experiment import Guards
from capacity.testing import SyntheticSpec, synthetic_run

BOOT = 60


def test_erlang_c_known_values() -> None:
    # M/M/1: P(wait) = rho; M/M/2 with a = 1: C = 1/3 (textbook)
    assert float(erlang_c(np.array(1), np.array(0.7))) == pytest.approx(0.7)
    assert float(erlang_c(np.array(2), np.array(1.0))) == pytest.approx(1 / 3)
    # M/M/1 response time is Exp(mu - lambda): median ln2 / (mu - lambda)
    assert float(sojourn_quantile(0.5, np.array(1), np.array(0.1), np.array(6.0))) == pytest.approx(
        np.log(2) / 4.0, rel=1e-4
    )
    assert np.isinf(sojourn_quantile(0.5, np.array(2), np.array(0.1), np.array(25.0)))


def test_saturation_found_within_5_percent_with_interval() -> None:
    spec = SyntheticSpec(servers=8, service_s=0.05, start_frac=0.3, growth=1.3, slo_p95_ms=400, seed=4)
    stages, seconds = synthetic_run(spec)
    a = analyse_run(stages, seconds, Guards(slo_p95_ms=400), n_boot=BOOT)  # type: ignore[call-arg]
    assert a.status == "ok" and a.saturation.reached
    assert a.saturation.value == pytest.approx(spec.truth, rel=0.05)
    assert a.saturation.lo is not None and a.saturation.hi is not None
    assert a.saturation.lo <= a.saturation.value <= a.saturation.hi
    assert a.saturation.hi - a.saturation.lo < 0.15 * spec.truth
    assert "seconds" in a.saturation.note
    # SLO capacity lies below saturation, set by a named guard
    assert a.slo_capacity.value is not None and a.slo_capacity.value < a.saturation.value
    assert a.slo_capacity.signal in ("p95_ms", "goodput", "error_ratio")
    # the latency knee sits below saturation, never above the first saturated stage
    assert a.knee.value is not None and a.knee.value <= a.saturation.value * 1.05
    assert a.knee.signal in ("p95_ms", "p99_ms")


def test_not_reached_is_a_lower_bound_and_queueing_extrapolates() -> None:
    spec = SyntheticSpec(
        servers=4,
        service_s=0.05,
        start_frac=0.3,
        growth=1.25,
        slo_p95_ms=1e6,
        max_stages=5,
        noise=0.005,
        seed=2,
    )
    stages, seconds = synthetic_run(spec)
    assert stages.achieved_rps.max() < 0.95 * spec.truth
    a = analyse_run(stages, seconds, n_boot=BOOT)
    assert a.status == "not reached"
    assert not a.saturation.reached and a.saturation.lo is None
    assert a.saturation.value == pytest.approx(stages.achieved_rps.max())
    assert not a.slo_capacity.reached
    q = a.queueing
    assert q is not None and q.extrapolated and not q.reached
    assert q.value == pytest.approx(spec.truth, rel=0.1)
    best = a.best_saturation
    assert best.value == q.value and best.extrapolated and not best.reached
    assert f"measured lower bound {a.saturation.value:.1f} rps" in best.note


def test_pool_metric_uses_the_utilisation_law() -> None:
    spec = SyntheticSpec(
        servers=6,
        service_s=0.04,
        start_frac=0.2,
        growth=1.3,
        slo_p95_ms=1e6,
        max_stages=5,
        pool_metric=True,
        noise=0.01,
        seed=5,
    )
    stages, seconds = synthetic_run(spec)
    a = analyse_run(stages, seconds, n_boot=BOOT)
    assert a.queueing is not None and a.queueing.signal == "pool_busy_pct"
    assert a.queueing.value == pytest.approx(spec.truth, rel=0.05)


def test_invalid_stage_is_never_a_knee_nor_capacity() -> None:
    spec = SyntheticSpec(servers=8, service_s=0.05, start_frac=0.3, growth=1.3, invalid_stage=True, seed=4)
    stages, seconds = synthetic_run(spec)
    invalid_rate = float(stages.loc[stages.verdict.str.startswith("invalid"), "offered_rps"].iloc[0])
    a = analyse_run(stages, seconds, n_boot=BOOT)
    assert any("invalid" in n for n in a.notes)
    for est in (a.saturation, a.slo_capacity, a.knee, *a.knees.values()):
        assert est.value != invalid_rate


def test_to_dict_is_strict_json() -> None:
    stages, seconds = synthetic_run(SyntheticSpec(seed=1))
    data = analyse_run(stages, seconds, n_boot=20).to_dict()
    text = json.dumps(data, allow_nan=False)
    assert json.loads(text)["saturation"]["signal"]


def test_missing_columns_name_what_is_missing() -> None:
    with pytest.raises(CapacityError, match=r"missing column\(s\) achieved_rps"):
        analyse_run(pd.DataFrame({"target_rps": [1.0, 2.0]}))
    with pytest.raises(CapacityError, match="target_rps or offered_rps"):
        analyse_run(pd.DataFrame({"achieved_rps": [1.0, 2.0]}))


@pytest.mark.parametrize(
    "frame",
    [
        pd.DataFrame({"target_rps": [10.0], "achieved_rps": [10.0], "p95_ms": [20.0]}),
        pd.DataFrame({"target_rps": [10.0, 20.0], "achieved_rps": [np.nan, np.nan]}),
        pd.DataFrame({"target_rps": [10.0, 20.0], "achieved_rps": [10, 20], "verdict": ["interrupted", "invalid: x"]}),
        pd.DataFrame({"target_rps": [], "achieved_rps": []}),
    ],
)
def test_thin_input_is_insufficient_data(frame: pd.DataFrame) -> None:
    a = analyse_run(frame, n_boot=10)
    assert a.status == "insufficient data"
    for est in (a.saturation, a.slo_capacity, a.knee):
        assert est.value is None and "insufficient data" in est.note


def test_all_stages_failing_gives_no_slo_capacity() -> None:
    frame = pd.DataFrame(
        {
            "target_rps": [10.0, 20.0, 30.0],
            "achieved_rps": [10, 20, 30],
            "p95_ms": [900.0, 950, 990],
            "verdict": ["fail", "fail", "fail"],
        }
    )
    a = analyse_run(frame, guards=Guards(slo_p95_ms=500), n_boot=10)  # type: ignore[call-arg]
    assert a.slo_capacity.value is None and a.slo_capacity.note == "no stage passed"
    assert not a.saturation.reached  # goodput followed offered: a lower bound, not a made-up figure


def test_slo_capacity_interpolates_to_the_breaching_guard() -> None:
    frame = pd.DataFrame(
        {
            "target_rps": [100.0, 200.0, 300.0, 400.0],
            "achieved_rps": [100, 200, 300, 400],
            "p95_ms": [100.0, 200.0, 400.0, 800.0],
            "error_ratio": [0, 0, 0, 0],
        }
    )
    a = analyse_run(frame, guards=Guards(slo_p95_ms=500, max_cpu_pct=None), n_boot=0)  # type: ignore[call-arg]
    # p95 crosses 500 ms a quarter of the way from 300 to 400 rps
    assert a.slo_capacity.value == pytest.approx(325.0)
    assert a.slo_capacity.signal == "p95_ms" and a.slo_capacity.reached


def test_stages_without_seconds_bootstrap_over_stages() -> None:
    stages, _ = synthetic_run(SyntheticSpec(servers=8, service_s=0.05, start_frac=0.2, growth=1.2, seed=9))
    a = analyse_run(stages, None, n_boot=BOOT)
    assert a.details["interval_basis"] == "stages"
    assert a.saturation.reached and "over stages" in a.saturation.note


def test_adaptive_run_out_of_rate_order_with_a_contradiction() -> None:
    """Ramp, first failure, bisection below it (stages out of rate order), an aborted failed stage and a noisy
    pass above the lowest failure: the SLO capacity sits between the highest pass below the *lowest* failure
    and that failure, and the contradiction is noted, never used."""
    frame = pd.DataFrame(
        {
            "target_rps": [25.0, 40.0, 64.0, 102.4, 163.8, 133.1, 148.5, 156.2, 152.0, 150.0],
            "achieved_rps": [25.0, 40.0, 64.0, 102.4, 150.0, 133.1, 148.5, 155.0, 151.9, 150.0],
            "p95_ms": [100.0, 100, 110, 120, 900, 130, 150, 240, 300, 400],
            "verdict": ["pass"] * 4 + ["fail", "pass", "pass", "pass", "fail", "fail"],
            "duration_s": [12.0] * 4 + [4.5, 12, 12, 12, 4.0, 4.0],  # failed stages aborted early
        }
    )
    guards = Guards(slo_p95_ms=250, max_cpu_pct=None)  # type: ignore[call-arg]
    a = analyse_run(frame, guards=guards, n_boot=0)
    # lowest failure 150 (p95 400 ms); highest pass below it 148.5 (p95 150): p95 crosses 250 ms at 40% of the gap
    assert a.slo_capacity.reached and a.slo_capacity.signal == "p95_ms"
    assert a.slo_capacity.value == pytest.approx(148.5 + (250 - 150) / (400 - 150) * 1.5)
    assert any("passed above the lowest failing rate (156.2 rps)" in n for n in a.notes), a.notes
    assert a.saturation.reached and a.saturation.value == pytest.approx(155.0)  # best goodput before 163.8 sagged


def test_a_pass_and_a_fail_at_the_same_rate_use_the_pass_below() -> None:
    frame = pd.DataFrame(
        {
            "target_rps": [50.0, 100.0, 150.0, 150.0],
            "achieved_rps": [50.0, 100.0, 150.0, 150.0],
            "p95_ms": [100.0, 200.0, 240.0, 260.0],
            "verdict": ["pass", "pass", "pass", "fail"],
        }
    )
    a = analyse_run(frame, guards=Guards(slo_p95_ms=250, max_cpu_pct=None), n_boot=0)  # type: ignore[call-arg]
    assert 100.0 <= (a.slo_capacity.value or 0) < 150.0


@pytest.mark.parametrize("seed", range(8))
def test_synthetic_adaptive_runs_find_the_truth(seed: int) -> None:
    spec = SyntheticSpec(adaptive=True, seed=seed, growth=1.6, start_frac=0.15, slo_p95_ms=1000.0)
    stages, seconds = synthetic_run(spec)
    assert (np.diff(stages["target_rps"].to_numpy()) < 0).any()  # bisection ran below the first failure
    assert (stages.loc[stages.verdict == "fail", "duration_s"] < spec.measure_s + spec.warmup_s).all()
    a = analyse_run(stages, seconds, guards=Guards(slo_p95_ms=1000.0), n_boot=0)  # type: ignore[call-arg]
    best = a.best_saturation
    assert best.value == pytest.approx(spec.truth, rel=0.10)  # aborted 3-s stages: see the benchmark for 5%
    # rates are offered rates, which the synthetic draws with Poisson noise (a few % over 15 s)
    assert a.slo_capacity.value is not None and a.slo_capacity.value <= spec.truth * 1.05
