"""Gunther's Universal Scalability Law, 3-parameter form, fitted by bounded nonlinear least squares.

    X(N) = lambda * N / (1 + sigma * (N - 1) + kappa * N * (N - 1))

``lambda`` (throughput of one unit) is a free parameter, as in codahale/usl4j and the R package
``usl`` (its ``gamma``); the older method that fixes lambda = X(1) gives different coefficients on
the same data, so ``method_`` always says which was used. Intervals are Wald intervals with
two-sided Student-t quantiles (n - 3 dof) from the asymptotic covariance; ``r_usl_ci_`` gives the
R ``usl`` package's convention for comparison. N_peak and X_max intervals come from sampling that
covariance.

A peak the data do not show is refused: ``n_peak_`` is None (and ``x_max_`` is a lower bound, the
largest throughput measured) unless the fitted curve has flattened inside the measured range.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy import optimize, stats

from capacity.core.errors import CapacityError

METHOD = "3-parameter USL, bounded nonlinear least squares (scipy least_squares, trust-region reflective)"


def usl_throughput(n: np.ndarray, sigma: float, kappa: float, lam: float) -> np.ndarray:
    """X(N) for the given coefficients."""
    n = np.asarray(n, dtype=float)
    return lam * n / (1.0 + sigma * (n - 1.0) + kappa * n * (n - 1.0))


def _peak(sigma: float, kappa: float) -> float:
    return math.sqrt((1.0 - sigma) / kappa) if kappa > 0 and sigma < 1 else math.inf


class USL:
    """scikit-learn style USL model: ``USL().fit(n, x).predict(n)``."""

    sigma_: float
    kappa_: float
    lambda_: float
    n_peak_: float | None
    x_max_: float | None
    x_max_is_lower_bound_: bool
    ci_: dict[str, tuple[float, float]]
    r_usl_ci_: dict[str, tuple[float, float]]
    method_: str
    notes_: list[str]

    def __init__(self, *, confidence: float = 0.95, flat_fraction: float = 0.98, seed: int = 0) -> None:
        self.confidence = confidence
        self.flat_fraction = flat_fraction
        """The peak counts as shown when X at the largest measured N is within this share of X_max."""
        self.seed = seed

    def fit(self, n: Any, x: Any) -> USL:
        """Fit to measured (N, throughput) pairs; needs at least 4 distinct N (3 parameters + 1 dof)."""
        na = np.asarray(n, dtype=float)
        xa = np.asarray(x, dtype=float)
        if na.shape != xa.shape or na.ndim != 1:
            raise CapacityError("USL fit: N and throughput must be columns of the same length")
        ok = np.isfinite(na) & np.isfinite(xa) & (na > 0) & (xa > 0)
        na, xa = na[ok], xa[ok]
        if len(np.unique(na)) < 4:
            raise CapacityError(
                f"USL fit: insufficient data ({len(np.unique(na))} distinct sizes with positive "
                "throughput; needs at least 4)"
            )
        order = np.argsort(na)
        na, xa = na[order], xa[order]
        lam0 = float(np.max(xa / na))

        def resid(p: np.ndarray) -> np.ndarray:
            return usl_throughput(na, p[0], p[1], p[2]) - xa

        best = None
        for s0, k0 in ((0.01, 1e-4), (0.1, 1e-3), (0.0, 0.0), (0.5, 1e-2)):
            res = optimize.least_squares(
                resid,
                x0=[s0, k0, lam0],
                bounds=([0.0, 0.0, 1e-12], [1.0, np.inf, np.inf]),
                method="trf",
                x_scale="jac",
                xtol=1e-15,
                ftol=1e-15,
                gtol=1e-15,
                max_nfev=20000,
            )
            if best is None or res.cost < best.cost:
                best = res
        assert best is not None
        self.sigma_, self.kappa_, self.lambda_ = (float(v) for v in best.x)
        self.method_ = METHOD
        self.notes_ = []
        self._n, self._x = na, xa
        dof = len(na) - 3
        s2 = 2.0 * best.cost / dof if dof > 0 else math.nan
        jac = best.jac
        try:
            cov = np.linalg.inv(jac.T @ jac) * s2
        except np.linalg.LinAlgError:
            cov = np.full((3, 3), np.nan)
        self.cov_ = cov
        tq = float(stats.t.ppf(0.5 + self.confidence / 2, dof)) if dof > 0 else math.nan
        se = np.sqrt(np.clip(np.diag(cov), 0, None))
        names = ("sigma", "kappa", "lambda")
        self.ci_ = {nm: (float(v - tq * e), float(v + tq * e)) for nm, v, e in zip(names, best.x, se, strict=True)}
        # R package `usl` (3.x) prints "95%" intervals as coef +- qt(0.95, n - 1) * se (a one-sided
        # quantile with n - 1 dof); kept separately so its published figures can be compared.
        rq = float(stats.t.ppf(self.confidence, len(na) - 1))
        self.r_usl_ci_ = {
            nm: (float(v - rq * e), float(v + rq * e)) for nm, v, e in zip(names, best.x, se, strict=True)
        }
        self._peak_and_intervals(cov)
        return self

    def _peak_and_intervals(self, cov: np.ndarray) -> None:
        n_peak = _peak(self.sigma_, self.kappa_)
        n_hi = float(self._n.max())
        measured_max = float(self._x.max())
        shown = False
        if math.isfinite(n_peak):
            x_peak = float(usl_throughput(np.array([n_peak]), self.sigma_, self.kappa_, self.lambda_)[0])
            x_at_end = float(usl_throughput(np.array([n_hi]), self.sigma_, self.kappa_, self.lambda_)[0])
            shown = n_peak <= n_hi or x_at_end >= self.flat_fraction * x_peak
        if shown:
            self.n_peak_ = n_peak
            self.x_max_ = x_peak
            self.x_max_is_lower_bound_ = False
        else:
            self.n_peak_ = None
            self.x_max_ = measured_max
            self.x_max_is_lower_bound_ = True
            self.notes_.append(
                "no peak: the data do not show throughput flattening"
                + (
                    f" (the fit would put it at N={n_peak:.3g}, beyond the measured N<={n_hi:g})"
                    if math.isfinite(n_peak)
                    else " (kappa is 0: no retrograde term)"
                )
                + "; X_max is the largest measured throughput, a lower bound"
            )
        if not shown or not np.all(np.isfinite(cov)):
            return
        rng = np.random.default_rng(self.seed)
        draws = rng.multivariate_normal([self.sigma_, self.kappa_, self.lambda_], cov, size=4000, check_valid="ignore")
        draws = draws[(draws[:, 1] > 0) & (draws[:, 0] < 1) & (draws[:, 2] > 0)]
        if len(draws) < 100:
            return
        npk = np.sqrt((1 - draws[:, 0]) / draws[:, 1])
        xmx = draws[:, 2] * npk / (1 + draws[:, 0] * (npk - 1) + draws[:, 1] * npk * (npk - 1))
        a = (1 - self.confidence) / 2
        self.ci_["n_peak"] = (float(np.quantile(npk, a)), float(np.quantile(npk, 1 - a)))
        self.ci_["x_max"] = (float(np.quantile(xmx, a)), float(np.quantile(xmx, 1 - a)))

    def predict(self, n: Any) -> np.ndarray:
        """Fitted throughput at each N."""
        return usl_throughput(np.asarray(n, dtype=float), self.sigma_, self.kappa_, self.lambda_)

    def to_dict(self) -> dict[str, Any]:
        return {
            "sigma": self.sigma_,
            "kappa": self.kappa_,
            "lambda": self.lambda_,
            "n_peak": self.n_peak_,
            "x_max": self.x_max_,
            "x_max_is_lower_bound": self.x_max_is_lower_bound_,
            "ci": {k: list(v) for k, v in self.ci_.items()},
            "method": self.method_,
            "notes": list(self.notes_),
            "n": self._n.tolist(),
            "throughput": self._x.tolist(),
        }


UslFit = USL
"""The fitted model as stored in a RunAnalysis."""
