"""The one estimate formatter: measured with interval, lower bound, extrapolated, missing."""

from __future__ import annotations

from capacity.core.models import Estimate, RunSummary
from capacity.report.compare import figure_of
from capacity.report.estimate_text import format_estimate


def test_measured_with_interval_and_signal() -> None:
    e = Estimate(value=120.0, lo=114.04, hi=126.0, signal="goodput")
    assert format_estimate(e) == "120.0 [114.0, 126.0]"
    assert format_estimate(e, unit=" req/s", signal=True) == "120.0 req/s [114.0, 126.0] set by goodput"


def test_not_reached_is_a_lower_bound() -> None:
    e = Estimate(value=80.0, reached=False)
    assert format_estimate(e) == "> 80.0 (lower bound)"


def test_extrapolated_is_marked_and_never_a_bound() -> None:
    e = Estimate(value=150.0, lo=140.0, hi=160.0, reached=False, extrapolated=True)
    text = format_estimate(e, unit=" rps", digits=0)
    assert text == "150 rps [140, 160] (extrapolated)"
    assert ">" not in text


def test_missing_value() -> None:
    assert format_estimate(None) == "-"
    e = Estimate(value=None, reached=False, note="insufficient data: 1 stage")
    assert format_estimate(e, missing="not determined") == "not determined"
    assert format_estimate(e, missing="—", why_missing=True) == "— (insufficient data: 1 stage)"


def test_compare_figures_keep_the_extrapolated_mark() -> None:
    queueing = Estimate(value=150.0, reached=False, extrapolated=True, signal="latency percentiles (M/M/c)")
    summary = RunSummary(
        run_id="r",
        results_dir="x",
        experiment="e",
        target="t",
        saturation_rps=150.0,
        estimates={"saturation": queueing},
    )
    assert format_estimate(figure_of(summary, "saturation", "saturation_rps")) == "150.0 (extrapolated)"
