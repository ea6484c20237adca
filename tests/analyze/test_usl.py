"""USL fits reproduce published coefficients (reference README) and refuse peaks the data do not show."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from capacity.analyze import USL, analyse_scaling
from capacity.core.errors import CapacityError

REF = Path(__file__).parent / "data" / "reference"


def _fit(name: str, rows: int | None = None) -> USL:
    data = pd.read_csv(REF / name)
    if rows:
        data = data.iloc[:rows]
    return USL().fit(data.iloc[:, 0], data.iloc[:, 1])


def test_cisco_within_0_1_percent() -> None:
    m = _fit("usl_cisco_practical_scalability.csv")
    assert m.sigma_ == pytest.approx(0.02671591, rel=1e-3)
    assert m.kappa_ == pytest.approx(7.690945e-4, rel=1e-3)
    assert m.lambda_ == pytest.approx(995.6486, rel=1e-3)
    assert m.n_peak_ is not None and int(m.n_peak_) == 35
    assert m.x_max_ == pytest.approx(12341, rel=2e-4)
    assert "least squares" in m.method_ and "3-parameter" in m.method_
    lo, hi = m.ci_["x_max"]
    assert lo < m.x_max_ < hi


def test_specsdm91_within_1_percent() -> None:
    m = _fit("usl_specsdm91.csv")
    assert m.sigma_ == pytest.approx(0.0277285, rel=0.01)
    assert m.kappa_ == pytest.approx(1.044e-4, rel=0.01)
    assert m.lambda_ == pytest.approx(89.995, rel=0.01)
    assert m.n_peak_ == pytest.approx(96.52, rel=0.01)
    assert m.x_max_ == pytest.approx(1884, rel=0.01)


def test_raytracer_rows_1_to_6_with_overlapping_intervals() -> None:
    m = _fit("usl_raytracer.csv", rows=6)
    published = {
        "sigma": (0.02444, (0.00754, 0.04135)),
        "kappa": (0.00163, (0.00110, 0.00215)),
        "lambda": (20.856, (19.267, 22.445)),
    }
    for name, (value, (plo, phi)) in published.items():
        ours = {"sigma": m.sigma_, "kappa": m.kappa_, "lambda": m.lambda_}[name]
        assert ours == pytest.approx(value, rel=0.02)
        lo, hi = m.ci_[name]
        assert lo < phi and plo < hi, f"{name}: [{lo}, {hi}] does not overlap [{plo}, {phi}]"
        # the R package's own interval convention reproduces its printed intervals
        rlo, rhi = m.r_usl_ci_[name]
        assert rlo == pytest.approx(plo, rel=0.02) and rhi == pytest.approx(phi, rel=0.02)


def test_raytracer_all_rows_has_no_peak() -> None:
    m = _fit("usl_raytracer.csv")
    assert m.kappa_ == pytest.approx(0.0, abs=1e-6)
    assert m.n_peak_ is None and m.x_max_is_lower_bound_
    assert m.x_max_ == 310  # the largest measured throughput, not an invented peak
    assert any("no peak" in n for n in m.notes_)


@pytest.mark.parametrize("rows", [6, 10])
def test_refuses_a_peak_before_the_data_bend(rows: int) -> None:
    m = _fit("usl_cisco_practical_scalability.csv", rows=rows)
    assert m.n_peak_ is None
    assert m.x_max_ == pytest.approx(pd.read_csv(REF / "usl_cisco_practical_scalability.csv").throughput[rows - 1])


def test_synthetic_coefficients_exact() -> None:
    m = _fit("usl_synthetic_coef_test.csv")
    assert (m.sigma_, m.kappa_, m.lambda_) == pytest.approx((0.02, 0.02, 1.0), rel=1e-3)
    assert m.predict([7])[0] == pytest.approx(1 * 7 / (1 + 0.02 * 6 + 0.02 * 42), rel=1e-3)


def test_too_few_points_is_a_clear_error() -> None:
    with pytest.raises(CapacityError, match="insufficient data"):
        USL().fit([1, 2, 3], [10, 19, 27])
    with pytest.raises(CapacityError, match="'nodes' or 'concurrency'"):
        analyse_scaling(pd.DataFrame({"x": [1, 2], "y": [1, 2]}))
    with pytest.raises(CapacityError, match="non-numeric"):
        analyse_scaling(pd.DataFrame({"nodes": [1, 2, 3, 4], "throughput": [1, "a", 3, 4]}))


def test_scaling_table_fit() -> None:
    n = np.array([1, 2, 4, 8, 16, 32])
    x = 100 * n / (1 + 0.05 * (n - 1) + 0.001 * n * (n - 1))
    m = analyse_scaling(pd.DataFrame({"nodes": n, "throughput": x}))
    assert m.sigma_ == pytest.approx(0.05, rel=1e-3) and m.kappa_ == pytest.approx(0.001, rel=1e-3)
    assert m.n_peak_ == pytest.approx(np.sqrt(0.95 / 0.001), rel=1e-3)
