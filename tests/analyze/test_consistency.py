"""Estimates agree with the data and with each other (issue 13 item 3), on hand-built tables."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from capacity.analyze import analyse_run
from capacity.analyze.consistency import (
    Bounds,
    clip_interval,
    contain_point,
    contradictions,
    data_bounds,
    hold_below_failure,
    violations,
)
from capacity.analyze.table import normalise_stages
from capacity.core.models import Estimate

DATA = Path(__file__).parent / "data"


def test_sagging_step_test_saturation_stays_within_the_goodput_seen() -> None:
    """The step test whose goodput levels off (240, 244) and then sags (210, 168).

    Before: saturation 270.4 [210.0, 312.3], 11% above any goodput the test observed and not marked
    extrapolated (the sag fit's corner); the knee a lower bound of 1000 rps, above the first failure.
    """
    stages = pd.read_csv(DATA / "sagging_step_test.csv")
    a = analyse_run(stages, None, None, n_boot=200)
    peak = float(stages["achieved_rps"].max())
    sat = a.best_saturation
    assert sat.value is not None and sat.lo is not None and sat.hi is not None
    assert not sat.extrapolated and sat.value <= peak
    assert sat.lo <= sat.value <= sat.hi <= peak
    assert "fit's corner is 270" in sat.signal  # the model's figure is still told, as such
    assert a.knee.value is None or a.knee.value <= 400.0
    assert a.slo_capacity.value is not None and a.slo_capacity.value <= 400.0
    bounds = data_bounds(normalise_stages(stages), None)
    assert violations({"saturation": sat, "slo_capacity": a.slo_capacity, "knee": a.knee}, bounds) == []
    assert a.to_dict()["warnings"] == a.warnings


def test_a_point_outside_its_interval_widens_the_interval_and_says_so() -> None:
    e = contain_point(Estimate(value=10.0, lo=11.0, hi=12.0))
    assert (e.lo, e.hi) == (10.0, 12.0) and "widened" in e.note
    assert contain_point(Estimate(value=11.5, lo=11.0, hi=12.0)).note == ""
    clipped = clip_interval(Estimate(value=10.0, lo=5.0, hi=20.0), 8.0, 12.0)
    assert (clipped.lo, clipped.hi) == (8.0, 12.0)


def test_slo_capacity_and_knee_are_held_at_the_lowest_failing_rate() -> None:
    bounds = Bounds(lowest_failing_rate=195.97, peak_goodput=190.0, max_rate=265.0, min_rate=50.0)
    held = hold_below_failure(Estimate(value=196.5, lo=190.0, hi=201.0), bounds, "SLO capacity")
    assert held.value == pytest.approx(195.97) and held.hi == pytest.approx(195.97)
    assert "held at the lowest failing rate" in held.note
    assert violations({"slo_capacity": held}, bounds) == []
    assert violations({"knee": Estimate(value=206.3)}, bounds)


def test_the_lowest_failing_rate_is_the_lower_of_target_and_offered() -> None:
    # the run: an aborted stage's offered (207.1) overshot its target (195.97)
    stages = pd.DataFrame(
        {
            "target_rps": [100.0, 150.0, 195.97, 256.29],
            "offered_rps": [100.2, 149.8, 207.10, 265.75],
            "achieved_rps": [100.2, 149.8, 186.8, 180.0],
            "verdict": ["pass", "pass", "fail", "fail"],
        }
    )
    assert data_bounds(normalise_stages(stages), None).lowest_failing_rate == pytest.approx(195.97)


def test_contradictions_between_estimates_are_named() -> None:
    sat = Estimate(value=186.8)
    knee = Estimate(value=206.3)
    slo = Estimate(value=196.5)
    found = contradictions(sat, slo, knee, base_ratio=1.0)
    assert len(found) == 2 and "knee 206.3" in found[0] and "SLO capacity 196.5" in found[1]
    assert contradictions(sat, Estimate(value=150.0), Estimate(value=140.0), 1.0) == []


def test_an_extrapolated_saturation_must_name_its_model() -> None:
    bounds = Bounds(None, 100.0, 120.0, 10.0)
    assert violations({"saturation": Estimate(value=110.0)}, bounds)
    assert violations({"saturation": Estimate(value=110.0, extrapolated=True, method="a guess")}, bounds)
    ok = Estimate(value=110.0, extrapolated=True, method="M/M/c fit of sub-saturation latency")
    assert violations({"saturation": ok}, bounds) == []
