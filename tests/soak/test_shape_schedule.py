"""A shaped stage's arrivals follow its shape second by second (exactly for uniform arrivals)."""

from __future__ import annotations

import numpy as np
import pytest

from capacity.load.schedule import Shape, arrival_chunks, shape_of
from capacity.plan.soak import SoakSettings, slice_points


def _times(
    rate: float, duration: float, shape: Shape = (), arrival: str = "uniform", phase: float = 0.0, seed: int = 0
) -> np.ndarray:
    chunks = arrival_chunks(rate, duration, arrival=arrival, shape=shape, phase=phase, seed=seed)  # type: ignore[arg-type]
    return np.array([t for chunk in chunks for t in chunk])


def _per_second(times: np.ndarray, duration: int) -> np.ndarray:
    return np.bincount(np.floor(times).astype(int), minlength=duration)[:duration]


def test_burst_stage_offers_its_shape_each_second_exactly() -> None:
    soak = SoakSettings(shape="burst", burst_rps=40, burst_seconds=5, burst_period_s=20, burst_offset_s=10)
    points = soak.rate_points(20.0, 60.0)
    mean, shape = shape_of(points, 60.0)
    assert mean == pytest.approx(20 + 40 * 5 * 3 / 60)  # three 5-s bursts of +40 in 60 s
    counts = _per_second(_times(mean, 60.0, shape), 60)
    want = np.array([60 if (s - 10) % 20 < 5 and s >= 10 else 20 for s in range(60)])
    assert counts.tolist() == want.tolist()


def test_points_shape_is_linear_between_points() -> None:
    mean, shape = shape_of([(0, 0), (10, 100)], 10.0)
    assert mean == pytest.approx(50)
    counts = _per_second(_times(mean, 10.0, shape), 10)
    assert np.abs(counts - np.arange(5, 100, 10)).max() <= 1


def test_workers_share_a_shaped_schedule_exactly() -> None:
    """Worker i of n gets rate/n and phase i/n: their union is the one-process schedule."""
    mean, shape = shape_of([(0, 30), (4, 30), (4, 90), (6, 90), (6, 30), (12, 30)], 12.0)
    one = _times(mean, 12.0, shape)
    union = np.sort(np.concatenate([_times(mean / 3, 12.0, shape, phase=i / 3) for i in range(3)]))
    assert np.allclose(one, union)


def test_poisson_burst_counts_within_noise() -> None:
    mean, shape = shape_of([(0, 50), (30, 50), (30, 250), (60, 250)], 60.0)
    counts = _per_second(_times(mean, 60.0, shape, arrival="poisson", seed=11), 60)
    assert abs(counts[:30].sum() - 1500) < 4 * np.sqrt(1500)
    assert abs(counts[30:].sum() - 7500) < 4 * np.sqrt(7500)


def test_flat_arrival_unchanged_and_shape_is_multiples_of_the_mean() -> None:
    mean, shape = shape_of([(0, 1), (5, 3)], 5.0)
    assert mean == pytest.approx(2.0)
    assert shape == ((0.0, 0.5), (5.0, 1.5))
    assert len(_times(10.0, 3.0)) == 30
    with pytest.raises(ValueError):
        shape_of([(0, 0), (5, 0)], 5.0)


def test_segments_continue_the_soak_shape() -> None:
    """A soak's segments are slices of one shape: the bursts do not restart with each segment."""
    points = SoakSettings(shape="burst", burst_rps=10, burst_seconds=4, burst_period_s=25).rate_points(5.0, 60.0)
    seg = slice_points(points, 20.0, 40.0)
    assert seg[0] == (0.0, 5.0) and seg[-1] == (20.0, 5.0)
    assert (5.0, 15.0) in seg and (9.0, 15.0) in seg  # the burst at 25-29 s of the soak
    repeated = SoakSettings(shape="points", points=[(0, 10), (10, 30)]).rate_points(None, 25.0)
    assert repeated[-1] == (25.0, 20.0)
