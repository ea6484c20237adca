"""Saturation throughput: the most goodput the target sustains, where goodput stops following offered.

Open-model stages make this visible: below saturation goodput equals the offered rate (times the
target's normal success ratio); above it, goodput flattens at the service's capacity, or sags when
overload wastes work (timeouts, retries). So the estimate is a two-segment fit of goodput against
offered rate — ``goodput = b * offered`` up to the saturation point S, then ``S - d * (b * offered - S)``
with a sag ``d >= 0`` — weighted by how many seconds each stage measured, because the stages an
adaptive search aborts after a few seconds are far noisier than the full stages below them.
The fit is then held inside what the stages prove: S is at least the goodput of the highest stage
that still kept up and at most the lowest offered rate at which the target stopped keeping up.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from capacity.analyze.table import StageTable

LOSS_TOLERANCE = 0.02
"""A stage is saturated when its goodput ratio falls this far (relative) below the low-load ratio."""
ERROR_TOLERANCE = 0.01
"""... or when its error ratio rises this far (absolute) above the low-load error ratio."""
MAX_SAG = 1.0
"""The steepest sag believed: goodput falling by the overload itself (to nothing at twice saturation)."""
MIN_SAG_SPREAD = 1.15
"""The sag is only fitted when saturated stages span this ratio of offered rates; else it is 0."""
GRID_POINTS = 600


def baseline_ratio(rate: np.ndarray, achieved: np.ndarray) -> float:
    """The goodput ratio at low load: median over the lower half of the stages, capped at 1."""
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(rate > 0, achieved / rate, 1.0)  # a stage offered nothing kept up with it
    k = max(1, len(ratio) // 2)
    return float(min(1.0, np.median(ratio[:k])))


def saturated_mask(table: StageTable, min_ratio: float = 0.95) -> np.ndarray:
    """True for stages whose goodput no longer follows the offered rate.

    Either goodput fell more than ``LOSS_TOLERANCE`` (never looser than the guard's ``min_ratio``)
    below the low-load ratio, so a service that always fails 5% of requests is not mistaken for a
    saturated one, or the error ratio rose more than ``ERROR_TOLERANCE`` above its low-load level.
    """
    rate, achieved = table.rate, table.achieved
    if len(rate) == 0:
        return np.zeros(0, dtype=bool)
    base = baseline_ratio(rate, achieved)
    tol = min(LOSS_TOLERANCE, 1.0 - min_ratio)
    sat = achieved < (1.0 - tol) * base * rate
    errors = table.column("error_ratio")
    if errors is not None:
        errors = np.nan_to_num(errors, nan=0.0)
        k = max(1, len(errors) // 2)
        sat |= errors > float(np.median(errors[:k])) + ERROR_TOLERANCE
    return np.asarray(sat, dtype=bool)


def measured_seconds(table: StageTable) -> np.ndarray:
    """Seconds each stage measured (``requests / offered``, else ``duration_s``, else 1 each)."""
    frame, rate = table.frame, table.rate
    if "requests" in frame.columns:
        n = np.asarray(frame["requests"], dtype=float) / rate
        if np.all(np.isfinite(n) & (n > 0)):
            return n
    duration = table.column("duration_s")
    if duration is not None and np.all(np.isfinite(duration) & (duration > 0)):
        return duration
    return np.ones(len(rate))


def _best_sag(past: np.ndarray, resid: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """For each candidate S (a row of ``past``/``resid``), the least-squares sag, clipped to [0, ``MAX_SAG``]."""
    den = np.sum(weights * past * past, axis=1)
    num = -np.sum(weights * past * resid, axis=1)
    return np.clip(np.divide(num, den, out=np.zeros_like(num), where=den > 0), 0.0, MAX_SAG)


def two_segment_fit(
    offered: np.ndarray, goodput: np.ndarray, weights: np.ndarray, base: float, *, sag: bool
) -> tuple[float, float]:
    """(S, d): weighted least squares of ``min(b*x, S)`` with sag ``d`` past S.

    S is profiled on a grid (for a given S the best ``d`` is closed-form), then made exact: with the
    stages past S fixed the fit is a straight line, so a plateau comes out as exactly the goodput it held.
    """
    bx = base * offered
    grid = np.linspace(0.5 * float(np.min(goodput)), 1.05 * float(np.max(bx)), GRID_POINTS)[:, None]
    past = np.maximum(bx[None, :] - grid, 0.0)
    resid = goodput[None, :] - np.minimum(bx[None, :], grid)
    d = _best_sag(past, resid, weights) if sag else np.zeros(len(grid))
    k = int(np.argmin(np.sum(weights * (resid + d[:, None] * past) ** 2, axis=1)))
    value, slope = float(grid[k, 0]), float(d[k])
    beyond = bx > value
    if beyond.any():
        exact, exact_slope = _past_segment(bx[beyond], goodput[beyond], weights[beyond], sag=sag)
        if np.array_equal(bx > exact, beyond):
            value, slope = exact, exact_slope
    return value, slope


def _past_segment(bx: np.ndarray, goodput: np.ndarray, weights: np.ndarray, *, sag: bool) -> tuple[float, float]:
    """(S, d) for the stages past S: ``y = S(1 + d) - d * b*x`` is a straight line, so weighted least squares."""
    slope = 0.0
    if sag and np.ptp(bx) > 0:
        mx, my = np.average(bx, weights=weights), np.average(goodput, weights=weights)
        fitted = -float(np.sum(weights * (bx - mx) * (goodput - my)) / np.sum(weights * (bx - mx) ** 2))
        slope = min(max(fitted, 0.0), MAX_SAG)
    intercept = float(np.average(goodput + slope * bx, weights=weights))
    return intercept / (1.0 + slope), slope


@dataclass(frozen=True)
class SaturationFit:
    """The measured saturation point and the bracket the stages prove around it.

    ``low`` is the most goodput a stage delivered while still keeping up; ``high`` the lowest rate at
    which a stage no longer kept up (its offered rate times the low-load ratio, lowered to where a sag
    of ``MAX_SAG`` would meet the goodput it did deliver). The true saturation point lies between
    them whatever the fit says, so a wide bracket (stages far apart) is worth narrowing with a model
    of the stages below it (``capacity.analyze.run_analysis``).
    ``peak`` is the most goodput any stage delivered: a measured ``value`` never exceeds it (a sag
    fit's corner can sit above every stage; a figure there is a model's, and must say so).
    """

    value: float | None
    reached: bool
    signal: str
    low: float = 0.0
    high: float = math.inf
    sag: float = 0.0
    peak: float = math.inf
    fitted: float | None = None
    """The two-segment fit before it was held inside ``[low, min(high, peak)]``."""


def fit_saturation(table: StageTable, min_ratio: float = 0.95) -> SaturationFit:
    """Fit the two segments; not reached: ``value`` is the largest goodput seen, a lower bound."""
    rate, achieved = table.rate, table.achieved
    if len(rate) < 2:
        return SaturationFit(None, False, "")
    sat = saturated_mask(table, min_ratio)
    if not sat.any():
        return SaturationFit(float(np.max(achieved)), False, "goodput followed offered")
    base = baseline_ratio(rate, achieved)
    weights = measured_seconds(table) / np.maximum(achieved, 1.0)  # Poisson: a mean rate's variance is rate/s
    spread = float(np.max(rate[sat]) / np.min(rate[sat]))
    value, sag = two_segment_fit(rate, achieved, weights, base, sag=sat.sum() >= 2 and spread >= MIN_SAG_SPREAD)
    kept = np.minimum(achieved, base * rate)[~sat]  # goodput never counts above what was offered
    low = float(np.max(kept)) if kept.size else 0.0
    # a stage that failed at b*x delivering y puts S at most where a sag of MAX_SAG would meet y
    failing = np.minimum(base * rate, (achieved + MAX_SAG * base * rate) / (1.0 + MAX_SAG))[sat]
    failing = failing[failing > low]  # a saturated stage below one that kept up is noise, not a bound
    peak = float(np.max(achieved))
    high = float(np.min(failing)) if failing.size else math.inf
    fitted = value
    value = min(max(value, low), high, peak)
    shape = f"sagging {sag:.2f} per unit overload" if sag > 0 else "plateau"
    signal = f"goodput vs offered ({shape}; {int(sat.sum())} saturated stage(s))"
    if fitted > peak:
        signal += f"; held at the most goodput any stage delivered, {peak:.4g} rps (the fit's corner is {fitted:.4g})"
    return SaturationFit(value, True, signal, low=low, high=high, sag=sag, peak=peak, fitted=fitted)


def up_to_first_saturated(table: StageTable, min_ratio: float = 0.95) -> StageTable:
    """Stages up to and including the first saturated one.

    Beyond saturation latency is bounded by the backlog and timeouts, not by the rate, so a curve
    that includes overload stages bends at the wrong place (or flattens and hides the knee).
    """
    sat = saturated_mask(table, min_ratio)
    if not sat.any():
        return table
    first = int(np.argmax(sat))
    return StageTable(frame=table.frame.iloc[: first + 1].reset_index(drop=True), notes=table.notes)
