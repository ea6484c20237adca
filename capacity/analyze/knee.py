"""The knee: where latency (or a resource) starts rising faster than linearly with the rate.

Kneedle (convex, increasing) on each signal against the offered rate, refusing curves whose
normalised bend is under ``MIN_BEND`` (a straight line plus noise); a continuous two-segment
linear fit is the fallback and the cross-check (its breakpoint is reported beside Kneedle's).
"""

from __future__ import annotations

import numpy as np

from capacity.analyze.kneedle import kneedle, piecewise_breakpoint
from capacity.analyze.table import LATENCY_COLUMNS, StageTable

MIN_BEND = 0.1
"""Smallest normalised distance from the chord that counts as a knee."""
MIN_POINTS = 4
MIN_RISE = 0.25
"""The signal must rise by this share of its lowest value, or a flat noisy curve would have a knee."""
SLOPE_JUMP = 2.0
"""A two-segment fit counts as a knee when the slope after is this many times the slope before."""
LATENCY_SIGNALS = LATENCY_COLUMNS
RESOURCE_KNEE_SIGNALS = (
    "cpu_pct",
    "mem_pct",
    "pool_busy_pct",
    "queue_latency_s_max",
    "queue_latency_s",
    "backlog_max",
    "queue_size_max",
    "sidekiq_cpu_pct",
    "mem_mb_max",
)


def _xy(table: StageTable, signal: str) -> tuple[np.ndarray, np.ndarray] | None:
    y = table.column(signal)
    if y is None:
        return None
    x = table.rate
    ok = np.isfinite(x) & np.isfinite(y)
    if ok.sum() < MIN_POINTS:
        return None
    low = float(np.min(y[ok]))
    if np.ptp(y[ok]) <= MIN_RISE * max(abs(low), 1e-9):
        return None
    return x[ok], y[ok]


def knee_point(table: StageTable, signal: str) -> tuple[float | None, str]:
    """(knee rate, method) for one signal, or (None, why not)."""
    xy = _xy(table, signal)
    if xy is None:
        return (
            None,
            f"no knee: fewer than {MIN_POINTS} stages with {signal}, or it rose less than {MIN_RISE:.0%}",
        )
    x, y = xy
    k = kneedle(x, y, curve="convex", direction="increasing", min_difference=MIN_BEND)
    if k is not None:
        return k, "kneedle"
    fit = piecewise_breakpoint(x, y)
    if fit is not None:
        b, before, after = fit
        if after > 0 and after > SLOPE_JUMP * max(before, 0.0) and np.ptp(y) > 0:
            return b, "two-segment linear fit"
    return None, "no knee: the signal rises no faster than linearly"


def knee_rate_only(table: StageTable, signal: str) -> float | None:
    """Kneedle alone (cheap enough to bootstrap)."""
    xy = _xy(table, signal)
    if xy is None:
        return None
    return kneedle(xy[0], xy[1], curve="convex", direction="increasing", min_difference=MIN_BEND)


def knee_signals(table: StageTable) -> list[str]:
    """The signals present in the table that a knee can be looked for on."""
    out = [s for s in LATENCY_SIGNALS if table.column(s) is not None]
    out += [s for s in RESOURCE_KNEE_SIGNALS if table.column(s) is not None]
    return out
