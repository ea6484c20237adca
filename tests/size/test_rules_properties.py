"""Property tests (issue 20 item 6) over generated runs: the one sizing rule set behaves.

Every run is a step test whose goodput levels off (and may sag) with CPU rising with goodput; the
analysis is the real one. Over these: the recommendation is monotone in demand and in each headroom
setting, never below what the measured per-task SLO capacity needs, identical between ``search``
(``recommend``) and a one-size ``scale`` on the same stages, and its range contains its point; the
SLO capacity is never above the saturation throughput. Examples are derandomised.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from capacity.analyze import RunAnalysis, analyse_run
from capacity.core.models import Estimate
from capacity.plan.experiment import Cluster, Guards, Production
from capacity.size import recommend
from capacity.size.curve import SizePoint, fit_curve, size_from_curve
from capacity.size.series import series_recommendation

SLO_MS = 300.0
GUARDS = Guards(slo_p95_ms=SLO_MS)  # type: ignore[call-arg]


def _settings(n: int) -> settings:
    return settings(
        max_examples=n, deadline=None, derandomize=True, database=None, suppress_health_check=[HealthCheck.too_slow]
    )


@st.composite
def runs(draw: st.DrawFn) -> tuple[pd.DataFrame, RunAnalysis, int]:
    """(stages, analysis with an interval on its SLO capacity, staging app tasks)."""
    tasks = draw(st.integers(1, 6))
    n = draw(st.integers(4, 10))
    step = draw(st.floats(5.0, 100.0))
    s = draw(st.floats(0.3, 0.9)) * step * n
    sag = draw(st.sampled_from([0.0, 0.1, 0.5]))
    x = step * np.arange(1, n + 1)
    over = np.maximum(x - s, 0.0)
    goodput = np.clip(np.minimum(x, s) - sag * over, 0.01, None)
    p95 = 40.0 * (1 + 40 * over / s) + 200.0 * (x / s) ** 4
    cpu = draw(st.floats(2.0, 20.0)) + draw(st.floats(30.0, 90.0)) * goodput / s
    frame = pd.DataFrame(
        {
            "target_rps": x,
            "offered_rps": x,
            "achieved_rps": goodput,
            "p95_ms": p95,
            "error_ratio": 1 - goodput / x,
            "verdict": ["pass" if p <= SLO_MS else "fail" for p in p95],
        }
    )
    if draw(st.booleans()):
        frame["m_cpu_pct"] = cpu
    a = analyse_run(frame, None, GUARDS, n_boot=0)
    slo = a.slo_capacity
    if slo.value is not None:
        lo, hi = draw(st.floats(0.0, 0.3)), draw(st.floats(0.0, 0.3))
        a = dataclasses.replace(
            a, slo_capacity=slo.model_copy(update={"lo": slo.value * (1 - lo), "hi": slo.value * (1 + hi)})
        )
    return frame, a, tasks


PRODUCTION = st.builds(
    Production,
    peak_rpm=st.floats(60.0, 60_000.0).map(lambda r: {"mix": r}),
    growth=st.floats(1.0, 2.0),
    unmodelled_share=st.floats(0.0, 0.5),
    cpu_target=st.floats(0.3, 0.9),
    throughput_headroom=st.floats(0.0, 1.0),
    zones=st.integers(1, 3),
    n_plus_one=st.booleans(),
    min_tasks=st.integers(1, 3),
)


def _sized(run: tuple[pd.DataFrame, RunAnalysis, int], production: Production) -> dict | None:  # type: ignore[type-arg]
    frame, a, tasks = run
    if a.slo_capacity.value is None and a.saturation.value is None:
        return None
    return recommend(a, frame, Cluster(app_tasks=tasks), production).to_dict()


@_settings(30)
@given(run=runs(), production=PRODUCTION, more=st.floats(1.0, 5.0))
def test_monotone_in_demand(run: tuple[pd.DataFrame, RunAnalysis, int], production: Production, more: float) -> None:
    a = _sized(run, production)
    if a is None:
        return
    bigger = production.model_copy(update={"peak_rpm": {"mix": production.peak_rpm["mix"] * more}})
    b = _sized(run, bigger)
    assert b is not None and b["app_tasks"] >= a["app_tasks"] and b["sidekiq_tasks"] >= a["sidekiq_tasks"]


@_settings(30)
@given(run=runs(), production=PRODUCTION, headroom=st.floats(0.0, 1.0), cpu=st.floats(0.3, 0.9))
def test_monotone_in_headroom_and_cpu_target(
    run: tuple[pd.DataFrame, RunAnalysis, int], production: Production, headroom: float, cpu: float
) -> None:
    a = _sized(run, production)
    if a is None:
        return
    roomier = production.model_copy(
        update={
            "throughput_headroom": production.throughput_headroom + headroom,
            "cpu_target": min(production.cpu_target, cpu),  # a lower CPU target is more headroom
        }
    )
    b = _sized(run, roomier)
    assert b is not None and b["app_tasks"] >= a["app_tasks"]


@_settings(50)
@given(run=runs(), production=PRODUCTION)
def test_never_below_the_measured_per_task_capacity_and_range_contains_point(
    run: tuple[pd.DataFrame, RunAnalysis, int], production: Production
) -> None:
    rec = _sized(run, production)
    if rec is None:
        return
    demand = rec["figures"]["demand_rps"]
    assert rec["app_tasks"] * rec["per_task_rps"] >= demand * (1 + production.throughput_headroom) * (1 - 1e-9)
    assert rec["app_tasks"] % production.zones == 0 and rec["app_tasks"] >= production.min_tasks
    if production.n_plus_one:
        assert rec["app_tasks"] >= math.ceil(rec["figures"]["raw_tasks"] - 1e-9) + 1
    lo, hi = rec["app_tasks_range"]
    assert lo <= rec["app_tasks"] <= hi
    assert rec["chain"][0]["step"] == "demand"
    assert rec["extrapolation"]["ratio"] == rec["app_tasks"] / run[2]


@_settings(50)
@given(run=runs(), production=PRODUCTION)
def test_search_and_a_one_size_scale_on_the_same_stages_agree(
    run: tuple[pd.DataFrame, RunAnalysis, int], production: Production
) -> None:
    frame, a, tasks = run
    slo = a.slo_capacity
    if slo.value is None or not slo.reached:
        return  # scale leaves a size whose SLO capacity was not reached out of the fit
    search = recommend(a, frame, Cluster(app_tasks=tasks), production).to_dict()
    lo, hi = search["figures"].get("capacity_range_rps") or [slo.lo, slo.hi]  # as scale takes it from the run
    points = [SizePoint(tasks, slo.value, lo, hi)]
    fit = fit_curve(points)
    sizing = size_from_curve(
        fit, points, demand_rps=search["figures"]["demand_rps"], production=production, staging_tasks=tasks
    )
    scale = series_recommendation(
        search, sizing, fit, largest=tasks, cluster=Cluster(app_tasks=tasks), production=production
    )
    assert scale["app_tasks"] == search["app_tasks"]
    assert scale["app_tasks_range"] == search["app_tasks_range"]
    assert scale["sidekiq_tasks"] == search["sidekiq_tasks"]


@_settings(30)
@given(run=runs())
def test_slo_capacity_never_above_saturation_throughput(run: tuple[pd.DataFrame, RunAnalysis, int]) -> None:
    a = analyse_run(run[0], None, GUARDS, n_boot=4, seed=1)  # the analysis as it comes, with an interval
    slo, sat = a.slo_capacity, a.saturation
    if slo.value is None or sat.value is None or not sat.reached or sat.extrapolated:
        return
    assert slo.value <= sat.value * (1 + 1e-6)
    if "held at the saturation" in slo.note:
        assert slo.hi is None or slo.hi <= sat.value * (1 + 1e-6)
        assert any(w.startswith("SLO capacity held") for w in a.warnings)  # the summary says so


def test_held_slo_capacity_says_which_is_held_and_why() -> None:
    """Stages that put the SLO capacity above the saturation throughput: it is held there, and said."""
    x = np.array([50.0, 100.0, 150.0, 160.0, 170.0])
    frame = pd.DataFrame(
        {
            "target_rps": x,
            "offered_rps": x,
            "achieved_rps": [50.0, 100.0, 150.0, 155.6, 155.6],  # goodput levels off at 155.6
            "p95_ms": [40.0, 45.0, 60.0, 250.0, 900.0],  # the p95 crosses 300 ms between 160 and 170
            "error_ratio": [0.0, 0.0, 0.0, 0.0, 0.0],
            "verdict": ["pass", "pass", "pass", "pass", "fail"],
        }
    )
    a = analyse_run(frame, None, GUARDS, n_boot=0)
    assert a.saturation.value is not None and a.saturation.reached
    assert a.slo_capacity.value == a.saturation.value
    held = [w for w in a.warnings if w.startswith("SLO capacity held at the saturation throughput")]
    assert len(held) == 1 and "no stage delivered more goodput" in held[0]
    assert isinstance(a.slo_capacity, Estimate) and "held" in a.slo_capacity.note
