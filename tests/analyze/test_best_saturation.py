"""The headline saturation rule (``RunAnalysis.best_saturation``), the one the run summary uses."""

from __future__ import annotations

from capacity.analyze.run_analysis import RunAnalysis
from capacity.core.models import Estimate

NONE = Estimate(value=None, reached=False)


def _analysis(saturation: Estimate, queueing: Estimate | None) -> RunAnalysis:
    return RunAnalysis(saturation=saturation, slo_capacity=NONE, knee=NONE, queueing=queueing)


def _queueing(value: float | None) -> Estimate:
    return Estimate(value=value, reached=False, extrapolated=True, note="extrapolated from stages below saturation")


def test_measured_saturation_wins_when_reached() -> None:
    measured = Estimate(value=100.0, reached=True)
    assert _analysis(measured, _queueing(120.0)).best_saturation is measured


def test_queueing_extrapolates_above_the_lower_bound_and_says_so() -> None:
    best = _analysis(Estimate(value=80.0, reached=False), _queueing(120.0)).best_saturation
    assert best.value == 120.0 and best.extrapolated and not best.reached
    assert best.note == "extrapolated from stages below saturation; measured lower bound 80.0 rps"


def test_queueing_below_the_lower_bound_is_contradicted() -> None:
    measured = Estimate(value=130.0, reached=False)
    assert _analysis(measured, _queueing(120.0)).best_saturation is measured


def test_no_queueing_fit_leaves_the_lower_bound() -> None:
    measured = Estimate(value=80.0, reached=False)
    assert _analysis(measured, None).best_saturation is measured
    assert _analysis(measured, _queueing(None)).best_saturation is measured


def test_no_measured_value_takes_the_queueing_figure_without_a_bound_note() -> None:
    best = _analysis(NONE, _queueing(50.0)).best_saturation
    assert best.value == 50.0 and best.note == "extrapolated from stages below saturation"
