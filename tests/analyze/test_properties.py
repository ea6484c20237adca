"""Property tests (issue 13 item 3): over generated runs, every estimate agrees with the data and with the others.

Runs come from ``capacity.testing``'s M/M/c generator (ramp and adaptive plans, aborted stages with
unfinished requests and censored percentiles, stages aborted in their warm-up, goodput that sags
under overload) and from plain step tests whose goodput levels off and sags. The invariants are
``capacity.analyze.consistency.violations``: SLO capacity and knee at most the lowest failing rate,
saturation at most the most goodput seen unless extrapolated by a named model, figures not reached
inside the measured range, intervals containing their point; contradictions between estimates are
warnings. Examples are derandomised (the same runs on every machine). The fast tier checks the
runs counted in ``RUNS`` (350, to keep the fast tier fast); the slow tier ``THOROUGH`` times as many more.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from capacity.analyze import RunAnalysis, analyse_run
from capacity.analyze.consistency import contradictions, data_bounds, violations
from capacity.analyze.queueing import sojourn_quantile
from capacity.analyze.saturation import baseline_ratio
from capacity.analyze.table import normalise_stages
from capacity.core.models import Estimate
from capacity.plan.experiment import Guards
from capacity.testing import SyntheticSpec, synthetic_run

RUNS = {"synthetic": 60, "synthetic_with_intervals": 30, "step_tests": 100}
"""Generated runs per property on every fast test run: 190 in all (the fast tier's budget is 150 s)."""
THOROUGH = 10
"""The slow tier runs each property on this many times as many other runs (1,900 more, 2,090 in all)."""


def _settings(n: int) -> settings:
    return settings(
        max_examples=n,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


@st.composite
def synthetic_specs(draw: st.DrawFn) -> SyntheticSpec:
    """Random M/M/c targets and plans, with aborted (censored) and sagging stages well represented."""
    servers = draw(st.sampled_from([1, 2, 4, 8, 16, 32, 64]))
    truth = draw(st.floats(40.0, 500.0))
    service_s = servers / truth
    unloaded_p95 = float(sojourn_quantile(0.95, np.array(servers), np.array(service_s), np.array(1e-6))) * 1000
    adaptive = draw(st.booleans())
    return SyntheticSpec(
        servers=servers,
        service_s=service_s,
        start_frac=draw(st.floats(0.05, 0.5)),
        growth=draw(st.floats(1.1, 2.0)),
        slo_p95_ms=unloaded_p95 * draw(st.floats(1.5, 15.0)),
        noise=draw(st.floats(0.0, 0.05)),
        measure_s=draw(st.integers(4, 12)),
        warmup_s=draw(st.integers(0, 5)),
        backlog=draw(st.integers(8, 256)),
        degrade=draw(st.sampled_from([0.0, 0.0, 0.1, 0.3, 0.6])),
        extra_stages_after_fail=draw(st.integers(0, 3)),
        max_stages=draw(st.integers(3, 14)),
        pool_metric=draw(st.booleans()),
        invalid_stage=draw(st.booleans()),
        error_rate=draw(st.sampled_from([0.0, 0.0, 0.002, 0.02])),
        adaptive=adaptive,
        abort_s=draw(st.integers(1, 4)),
        abort_failing=draw(st.booleans()),
        abort_in_warmup=draw(st.booleans()),
        seed=draw(st.integers(0, 2**31 - 1)),
    )


def _estimates(a: RunAnalysis) -> dict[str, Estimate]:
    out = {
        "saturation": a.saturation,
        "saturation_best": a.best_saturation,
        "slo_capacity": a.slo_capacity,
        "knee": a.knee,
    }
    out.update({f"knee_{k}": e for k, e in a.knees.items()})
    if a.queueing is not None:
        out["queueing"] = a.queueing
    return out


def _check(stages: pd.DataFrame, seconds: pd.DataFrame | None, guards: Guards | None, n_boot: int) -> None:
    a = analyse_run(stages, seconds, guards, n_boot=n_boot, seed=1)
    if a.status == "insufficient data":
        return
    table = normalise_stages(stages)
    bounds = data_bounds(table, guards)
    assert violations(_estimates(a), bounds) == []
    assert not any(w.startswith("inconsistent estimate") for w in a.warnings)
    base = baseline_ratio(table.rate, table.achieved)
    for contradiction in contradictions(a.saturation, a.slo_capacity, a.knee, base):
        assert contradiction in a.warnings  # never silent
    if bounds.lowest_failing_rate is None:  # nothing failed: the SLO capacity can only be a lower bound
        assert not a.slo_capacity.reached


def _synthetic(spec: SyntheticSpec, n_boot: int) -> None:
    stages, seconds = synthetic_run(spec)
    _check(stages, seconds, Guards(slo_p95_ms=spec.slo_p95_ms), n_boot=n_boot)  # type: ignore[call-arg]


@_settings(RUNS["synthetic"])
@given(spec=synthetic_specs())
def test_synthetic_runs_estimates_hold_their_bounds(spec: SyntheticSpec) -> None:
    _synthetic(spec, n_boot=0)


@_settings(RUNS["synthetic_with_intervals"])
@given(spec=synthetic_specs())
def test_synthetic_runs_intervals_contain_their_points(spec: SyntheticSpec) -> None:
    _synthetic(spec, n_boot=8)


@st.composite
def step_tests(draw: st.DrawFn) -> pd.DataFrame:
    """A step test as a CSV gives it: goodput follows, levels off at S, then sags; latency rises past S."""
    n = draw(st.integers(3, 12))
    step = draw(st.floats(5.0, 200.0))
    s = draw(st.floats(0.2, 1.2)) * step * n
    sag = draw(st.sampled_from([0.0, 0.05, 0.2, 0.5, 0.9]))
    rng = np.random.default_rng(draw(st.integers(0, 2**31 - 1)))
    noise = draw(st.floats(0.0, 0.05))
    x = step * np.arange(1, n + 1)
    over = np.maximum(x - s, 0.0)
    goodput = np.clip(np.minimum(x, s) - sag * over, 0.0, None) * np.exp(rng.normal(0, noise, n))
    goodput = np.clip(np.minimum(goodput, x), 0.01, None)
    p95 = 30.0 * (1 + 40 * over / s) * np.exp(rng.normal(0, noise, n))
    frame = pd.DataFrame({"target_rps": x, "offered_rps": x, "achieved_rps": goodput, "p95_ms": p95})
    frame["p50_ms"], frame["p99_ms"] = p95 * 0.6, p95 * 1.5
    frame["error_ratio"] = 1 - goodput / x
    return frame


@_settings(RUNS["step_tests"])
@given(stages=step_tests(), n_boot=st.sampled_from([0, 0, 0, 8]))
def test_step_tests_that_level_off_and_sag_keep_saturation_within_the_goodput_seen(
    stages: pd.DataFrame, n_boot: int
) -> None:
    _check(stages, None, None, n_boot=n_boot)


@pytest.mark.slow
@pytest.mark.cpu_only
@settings(_settings(THOROUGH * RUNS["synthetic"]), derandomize=False)
@given(spec=synthetic_specs(), n_boot=st.sampled_from([0, 0, 0, 8]))
def test_thorough_synthetic_runs(spec: SyntheticSpec, n_boot: int) -> None:
    _synthetic(spec, n_boot)


@pytest.mark.slow
@pytest.mark.cpu_only
@settings(_settings(THOROUGH * (RUNS["synthetic_with_intervals"] + RUNS["step_tests"])), derandomize=False)
@given(stages=step_tests(), n_boot=st.sampled_from([0, 0, 0, 8]))
def test_thorough_step_tests(stages: pd.DataFrame, n_boot: int) -> None:
    _check(stages, None, None, n_boot=n_boot)
