"""Queueing fits of sub-saturation stages: estimate saturation before reaching it ("extrapolated").

Two models, both on stages whose goodput still followed the offered rate:

- utilisation law, U = X * S / c: a utilisation signal (thread-pool busy %, else CPU %) rising
  linearly with throughput X reaches 100% at X = c / S;
- M/M/c: the response-time percentiles of c servers with exponential service time s at arrival
  rate lambda (Erlang C waiting, exactly), fitted for (c, s) on a grid; saturation is c / s.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.special import gammaincc, gammaln, xlogy

from capacity.analyze.saturation import saturated_mask
from capacity.analyze.table import StageTable

C_GRID = np.array([*range(1, 17), 20, 24, 28, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 256], dtype=float)
S_GRID = np.exp(np.linspace(np.log(0.1), np.log(4.0), 48))
QUANTILES = {"p50_ms": 0.50, "p95_ms": 0.95, "p99_ms": 0.99}


def erlang_c(c: np.ndarray, a: np.ndarray) -> np.ndarray:
    """Probability of waiting in M/M/c with ``c`` servers and offered load ``a`` = lambda * s (< c).

    Erlang B is a Poisson(a) pmf over its cdf at c (closed form, vectorised over any grid of c);
    Erlang C follows from it.
    """
    c, a = np.broadcast_arrays(np.asarray(c, dtype=float), np.asarray(a, dtype=float))
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        b = np.exp(xlogy(c, a) - a - gammaln(c + 1.0)) / gammaincc(c + 1.0, a)
    b = np.where(a > 0, b, 0.0)
    rho = a / c
    return b / (1.0 - rho * (1.0 - b))


def sojourn_quantile(q: float | np.ndarray, c: np.ndarray, s: np.ndarray, lam: np.ndarray) -> np.ndarray:
    """The q-quantile (seconds) of M/M/c response time; inf where lambda >= c / s.

    ``q`` may be an array broadcast with the others (several quantiles in one call).

    P(T > t) = (1 - C) e^(-mu t) + C * P(Exp(theta) + Exp(mu) > t), theta = c mu - lambda.
    """
    c, s, lam, target = np.broadcast_arrays(
        np.asarray(c, float), np.asarray(s, float), np.asarray(lam, float), 1.0 - np.asarray(q, float)
    )
    mu = 1.0 / s
    theta = c * mu - lam
    stable = theta > 0
    theta_safe = np.where(stable, theta, 1.0)
    pc = np.where(stable, erlang_c(c, np.where(stable, lam * s, 0.0)), 1.0)

    same = np.isclose(theta_safe, mu)
    d = np.where(same, 1.0, theta_safe - mu)
    w_mu = np.where(same, 0.0, theta_safe / d)
    w_theta = np.where(same, 0.0, -mu / d)

    def tail(t: np.ndarray) -> np.ndarray:
        e_mu = np.exp(-mu * t)
        hypo = np.where(same, (1 + mu * t) * e_mu, w_mu * e_mu + w_theta * np.exp(-theta_safe * t))
        return (1 - pc) * e_mu + pc * hypo

    def gap(t: np.ndarray) -> np.ndarray:  # log tail is nearly linear in t: false position converges fast
        return np.log(np.maximum(tail(t), 1e-300)) - np.log(target)

    a = np.zeros_like(mu)
    b = (-np.log(target) + 2.0) * (1.0 / mu + 1.0 / theta_safe) * 2.0
    fa, fb, side, t = gap(a), gap(b), np.zeros_like(mu), b
    for _ in range(10):  # Illinois false position on [a, b]: to machine precision in about 8 steps
        with np.errstate(invalid="ignore", divide="ignore"):
            t = np.where(fb != fa, (a * fb - b * fa) / (fb - fa), 0.5 * (a + b))
        ft = gap(t)
        left = ft > 0
        a, fa = np.where(left, t, a), np.where(left, ft, fa)
        b, fb = np.where(left, b, t), np.where(left, fb, ft)
        fb = np.where(left & (side == 1), fb / 2, fb)  # the same end kept twice: halve its weight
        fa = np.where(~left & (side == -1), fa / 2, fa)
        side = np.where(left, 1.0, -1.0)
    return np.where(stable, t, np.inf)


def arrival_rate(table: StageTable) -> np.ndarray:
    """The arrival rate lambda of each stage: the planned rate where the table has it, else offered.

    Offered counts are one realisation of the arrival process; near saturation a few per cent of
    counting noise would push a stage past c/s and force the fit's capacity above it.
    """
    target = table.column("target_rps")
    if target is None:
        return table.rate
    return np.where(np.isfinite(target) & (target > 0), target, table.rate)


def _latency_points(table: StageTable) -> tuple[np.ndarray, list[tuple[float, np.ndarray]]] | None:
    lam = arrival_rate(table)
    keep = ~saturated_mask(table) & ~table.flag("percentiles_censored")  # a lower bound is no point to fit
    pts = []
    for col, q in QUANTILES.items():
        y = table.column(col)
        if y is not None:
            pts.append((q, y))
    if not pts or keep.sum() < 3:
        return None
    good = keep & np.all([np.isfinite(y) & (y > 0) for _, y in pts], axis=0)
    if good.sum() < 3:
        return None
    return lam[good], [(q, y[good] / 1000.0) for q, y in pts]


def _sse(c: np.ndarray, s: np.ndarray, lam: np.ndarray, pts: list[tuple[float, np.ndarray]]) -> np.ndarray:
    total = np.zeros(np.broadcast_shapes(c.shape, s.shape))
    for q, y in pts:
        model = sojourn_quantile(q, c[..., None], s[..., None], lam)
        with np.errstate(divide="ignore"):
            err = np.log(model) - np.log(y)
        total = total + np.sum(np.where(np.isfinite(err), err**2, 1e6), axis=-1)
    return total


MIN_LATENCY_RISE = 0.15
"""Sub-saturation tail latency must rise by this share, or the curve cannot place saturation."""


def mmc_fit(table: StageTable, *, near_c: float | None = None) -> tuple[float, float, float] | None:
    """Best (c, s seconds, saturation c/s) for the sub-saturation latency curve, or None.

    None when fewer than 3 sub-saturation stages have latency or when latency did not rise (by
    ``MIN_LATENCY_RISE``) across them: a flat curve says nothing about where it will turn up.
    ``near_c`` limits the server grid to [c/2, 2c] (bootstrap replicates refit around the fit).
    """
    data = _latency_points(table)
    if data is None:
        return None
    lam, pts = data
    tail = pts[-1][1]
    if tail[-1] < (1 + MIN_LATENCY_RISE) * float(np.min(tail[: max(1, len(tail) // 2)])):
        return None
    p50 = next((y for q, y in pts if q == 0.5), pts[0][1])
    s0 = float(np.median(p50[: max(1, len(p50) // 2)])) / math.log(2)
    if not np.isfinite(s0) or s0 <= 0:
        return None
    cs = C_GRID if near_c is None else C_GRID[(near_c / 2 <= C_GRID) & (near_c * 2 >= C_GRID)]
    grid_c, grid_s = np.meshgrid(cs, s0 * S_GRID, indexing="ij")
    sse = _sse(grid_c, grid_s, lam, pts)
    i, j = np.unravel_index(int(np.argmin(sse)), sse.shape)
    c_best, s_best = float(grid_c[i, j]), float(grid_s[i, j])
    fine = s_best * np.exp(np.linspace(-0.08, 0.08, 33))
    sse_f = _sse(np.full_like(fine, c_best), fine, lam, pts)
    s_best = float(fine[int(np.argmin(sse_f))])
    if not np.isfinite(sse_f.min()) or sse_f.min() >= 1e6:
        return None
    return c_best, s_best, c_best / s_best


def utilisation_fit(
    table: StageTable, signals: tuple[str, ...] = ("pool_busy_pct", "cpu_pct")
) -> tuple[float, str] | None:
    """(rps at 100%, signal) from U = slope * X through the origin on sub-saturation stages."""
    keep = ~saturated_mask(table)
    for signal in signals:
        u = table.column(signal)
        if u is None:
            continue
        x = table.achieved
        ok = keep & np.isfinite(u) & (u > 0)
        if ok.sum() < 2:
            continue
        slope = float(np.sum(x[ok] * u[ok]) / np.sum(x[ok] ** 2))
        if slope > 0:
            return 100.0 / slope, signal
    return None
