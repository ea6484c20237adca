from __future__ import annotations

import numpy as np
import pytest

from capacity.load.schedule import arrival_chunks, mix_chunks, suggest_max_inflight


def _all(it: object) -> list[float]:
    return [t for chunk in it for t in chunk]  # type: ignore[attr-defined]


def test_uniform_count_and_spacing_exact() -> None:
    ts = _all(arrival_chunks(250.0, 10.0))
    assert len(ts) == 2500
    assert np.allclose(np.diff(ts), 1 / 250)
    assert ts[0] == 0.0 and ts[-1] < 10.0


def test_worker_phases_interleave_into_the_single_schedule() -> None:
    rate, n = 300.0, 3
    union = sorted(t for i in range(n) for t in _all(arrival_chunks(rate / n, 5.0, phase=i / n)))
    single = _all(arrival_chunks(rate, 5.0))
    assert len(union) == len(single) == 1500
    assert np.allclose(union, single)


def test_poisson_mean_and_cv() -> None:
    ts = np.array(_all(arrival_chunks(200.0, 100.0, arrival="poisson", seed=3)))
    gaps = np.diff(ts)
    assert abs(len(ts) / 100.0 - 200.0) / 200.0 < 0.03
    assert abs(gaps.mean() - 1 / 200) / (1 / 200) < 0.03
    assert 0.95 < gaps.std() / gaps.mean() < 1.05  # exponential gaps: CV = 1
    uniform = np.diff(_all(arrival_chunks(200.0, 10.0)))
    assert uniform.std() / uniform.mean() < 1e-6


def test_mix_counts_follow_weights_exactly() -> None:
    it = mix_chunks([7839, 588, 588], seed=1, chunk=1000, block=100)
    kinds = np.array(next(it) + next(it) + next(it))
    counts = np.bincount(kinds, minlength=3)
    expected = 3000 * np.array([7839, 588, 588]) / (7839 + 588 + 588)
    assert np.all(np.abs(counts - expected) <= 1)
    assert kinds[:50].tolist() != sorted(kinds[:50].tolist())  # shuffled, not blocks


@pytest.mark.parametrize(
    ("rate", "slo", "p99", "expected"),
    [(100, 500, None, 100), (1, 100, None, 16), (10_000, 1000, None, 5000), (100, 200, 800, 160)],
)
def test_suggest_max_inflight(rate: float, slo: float, p99: float | None, expected: int) -> None:
    assert suggest_max_inflight(rate, slo, 10.0, p99) == expected
