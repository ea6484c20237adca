"""Kneedle against the paper's and kneed's published knees, and against the kneed package itself."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from capacity.analyze import kneedle, piecewise_breakpoint
from tests.analyze.kneed_check import kneed_knee

REF = Path(__file__).parent / "data" / "reference"

CASES = [
    ("kneed_figure2.csv", "concave", "increasing", "interp1d", 0.222),
    ("kneed_figure2.csv", "concave", "increasing", "polynomial", 0.222),
    ("kneed_bumpy.csv", "convex", "decreasing", "interp1d", 26),
    ("kneed_bumpy.csv", "convex", "decreasing", "polynomial", 28),
    ("kneed_concave_increasing.csv", "concave", "increasing", "interp1d", 2),
    ("kneed_convex_decreasing.csv", "convex", "decreasing", "interp1d", 2),
]


@pytest.mark.parametrize(("name", "curve", "direction", "interp", "published"), CASES)
def test_published_knees(name: str, curve: str, direction: str, interp: str, published: float) -> None:
    data = pd.read_csv(REF / name)
    ours = kneedle(data.x, data.y, curve=curve, direction=direction, interp=interp)  # type: ignore[arg-type]
    assert ours is not None
    assert ours == pytest.approx(published, rel=0.05)
    assert ours == kneed_knee(data.x, data.y, curve=curve, direction=direction, interp=interp)  # type: ignore[arg-type]


@pytest.mark.filterwarnings("ignore::numpy.exceptions.RankWarning")
def test_agrees_with_kneed_on_noisy_curves() -> None:
    rng = np.random.default_rng(3)
    compared = found = 0
    for _ in range(60):
        x = np.sort(rng.uniform(0, 100, rng.integers(5, 25)))
        for curve in ("convex", "concave"):
            for direction in ("increasing", "decreasing"):
                base = x**2 if curve == "convex" else np.sqrt(x) * 100
                y = (base if direction == "increasing" else -base) + rng.normal(0, rng.uniform(0, 300), len(x))
                for interp in ("interp1d", "polynomial"):
                    ours = kneedle(x, y, curve=curve, direction=direction, interp=interp)  # type: ignore[arg-type]
                    theirs = kneed_knee(x, y, curve=curve, direction=direction, interp=interp)  # type: ignore[arg-type]
                    assert ours == theirs
                    compared += 1
                    found += ours is not None
    assert compared == 480 and found > 300


def test_uneven_rates_and_min_difference() -> None:
    # latency of a queue: flat, then bending up near 80 rps (stages spaced geometrically)
    x = np.array([10, 15, 22, 33, 50, 70, 80, 88])
    y = 50 + 5000 / (100 - x)
    assert kneedle(x, y) in (70, 80)
    line = 3 * x + np.array([0.5, -0.4, 0.3, -0.2, 0.4, -0.3, 0.2, -0.1])
    assert kneedle(x, line, min_difference=0.1) is None


def test_thin_input_gives_none() -> None:
    assert kneedle([1, 2], [1, 4]) is None
    assert kneedle([1, 2, 3, 4], [5, 5, 5, 5]) is None
    assert kneedle([1, np.nan, 3, 4], [1, 2, np.nan, 9]) is None


def test_piecewise_breakpoint_finds_the_corner() -> None:
    x = np.linspace(0, 100, 21)
    y = np.where(x < 60, 10 + 0.1 * x, 16 + 2.0 * (x - 60))
    b, before, after = piecewise_breakpoint(x, y)  # type: ignore[misc]
    assert b == pytest.approx(60, abs=1.0)
    assert before == pytest.approx(0.1, abs=0.02) and after == pytest.approx(2.0, abs=0.05)
    assert piecewise_breakpoint([1, 2, 3], [1, 2, 3]) is None
