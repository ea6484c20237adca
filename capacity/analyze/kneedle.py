"""Kneedle (Satopaa et al. 2011): the point of maximum curvature of a discrete curve.

Our own implementation, so it can be tuned for short noisy stage curves (``min_difference``
refuses a "knee" on a curve that is really a straight line plus noise), and checked against the
``kneed`` package and the paper's published examples in the tests (``kneed`` is a test dependency only).
"""

from __future__ import annotations

from typing import Literal

import numpy as np

Curve = Literal["convex", "concave"]
Direction = Literal["increasing", "decreasing"]
Interp = Literal["interp1d", "polynomial"]


def _normalise(a: np.ndarray) -> np.ndarray:
    span = float(a.max() - a.min())
    return (a - a.min()) / span if span > 0 else np.zeros_like(a)


def difference_curve(
    x: np.ndarray, y: np.ndarray, curve: Curve, direction: Direction
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Map the curve to "concave increasing" on [0, 1]^2 and return (x', y' - x', original index).

    Mirroring is done by value (x -> 1 - x, y -> 1 - y), so unevenly spaced rates work too.
    """
    xn, yn = _normalise(x), _normalise(y)
    if curve == "concave" and direction == "increasing":
        xt, yt = xn, yn
    elif curve == "concave" and direction == "decreasing":
        xt, yt = 1 - xn, yn
    elif curve == "convex" and direction == "increasing":
        xt, yt = 1 - xn, 1 - yn
    else:  # convex decreasing
        xt, yt = xn, 1 - yn
    order = np.argsort(xt, kind="stable")
    return xt[order], (yt - xt)[order], order


POLY_DEGREE = 7
"""The smoothing polynomial's degree with ``interp="polynomial"`` (``kneed``'s default; no caller changes it)."""


def kneedle(
    x: object,
    y: object,
    *,
    curve: Curve = "convex",
    direction: Direction = "increasing",
    S: float = 1.0,
    interp: Interp = "interp1d",
    min_difference: float | None = None,
) -> float | None:
    """The knee's x, or None when the curve has none.

    ``interp="polynomial"`` smooths y with a least-squares polynomial of ``POLY_DEGREE`` first (as the
    paper and ``kneed`` do); ``min_difference`` (0..1) refuses knees whose normalised distance from
    the chord is smaller, because on a handful of noisy stages a straight line always has *some* bump.
    """
    xa = np.asarray(x, dtype=float)
    ya = np.asarray(y, dtype=float)
    if xa.shape != ya.shape or xa.ndim != 1:
        raise ValueError("x and y must be 1-D arrays of the same length")
    ok = np.isfinite(xa) & np.isfinite(ya)
    xa, ya = xa[ok], ya[ok]
    order = np.argsort(xa, kind="stable")
    xa, ya = xa[order], ya[order]
    if len(xa) < 3 or np.ptp(xa) == 0 or np.ptp(ya) == 0:
        return None
    if interp == "polynomial":
        ys = np.poly1d(np.polyfit(xa, ya, min(POLY_DEGREE, len(xa) - 1)))(xa)
    elif interp == "interp1d":
        ys = ya
    else:
        raise ValueError(f"interp must be 'interp1d' or 'polynomial', got {interp!r}")
    from scipy.signal import argrelextrema  # scipy.signal is slow to import: only when used

    xt, diff, idx = difference_curve(xa, ys, curve, direction)
    maxima = argrelextrema(diff, np.greater_equal)[0]
    minima = set(argrelextrema(diff, np.less_equal)[0].tolist())
    if maxima.size == 0:
        return None
    step = float(np.abs(np.diff(xt)).mean())
    thresholds = {int(i): float(diff[i] - S * step) for i in maxima}
    maxima_set = set(thresholds)
    threshold, at, active = 0.0, int(maxima[0]), True
    for i in range(int(maxima[0]), len(xt) - 1):
        if i in maxima_set:
            threshold, at, active = thresholds[i], i, True
        if i in minima:
            threshold, active = 0.0, False
        if active and diff[i + 1] < threshold:
            if min_difference is not None and diff[at] < min_difference:
                return None
            return float(xa[idx[at]])
    return None


def piecewise_breakpoint(x: object, y: object) -> tuple[float, float, float] | None:
    """Best continuous two-segment linear fit: (breakpoint x, slope before, slope after).

    The breakpoint is searched on a fine grid between the 2nd and the next-to-last point, so at
    least two points sit on each side; None with fewer than 4 points.
    """
    xa = np.asarray(x, dtype=float)
    ya = np.asarray(y, dtype=float)
    ok = np.isfinite(xa) & np.isfinite(ya)
    xa, ya = xa[ok], ya[ok]
    order = np.argsort(xa)
    xa, ya = xa[order], ya[order]
    if len(xa) < 4 or np.ptp(xa) == 0:
        return None
    grid = np.linspace(xa[1], xa[-2], 200)[:, None]
    # every candidate breakpoint at once: a stack of least-squares problems solved by pseudo-inverse
    design = np.stack(
        [np.ones((len(grid), len(xa))), np.minimum(xa[None, :], grid), np.maximum(xa[None, :] - grid, 0.0)], axis=2
    )
    coef = np.linalg.pinv(design) @ ya
    sse = np.sum((np.einsum("gnk,gk->gn", design, coef) - ya[None, :]) ** 2, axis=1)
    k = int(np.argmin(sse))
    return float(grid[k, 0]), float(coef[k, 1]), float(coef[k, 2])
