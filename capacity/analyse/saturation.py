"""Saturation throughput: the most goodput the target sustains, where goodput stops following offered.

Open-model stages make this visible: below saturation goodput equals the offered rate (times the
target's normal success ratio); above it, goodput flattens at the service's capacity (or sags).
A stage is *saturated* when its goodput ratio falls below ``min_ratio`` of the low-load ratio, so a
service that always fails 5% of requests is not mistaken for a saturated one.
"""

from __future__ import annotations

import numpy as np

from capacity.analyse.table import StageTable


def baseline_ratio(rate: np.ndarray, achieved: np.ndarray) -> float:
    """The goodput ratio at low load: median over the lower half of the stages, capped at 1."""
    ratio = achieved / rate
    k = max(1, len(ratio) // 2)
    return float(min(1.0, np.median(ratio[:k])))


def saturated_mask(table: StageTable, min_ratio: float = 0.95) -> np.ndarray:
    """True for stages whose goodput no longer follows the offered rate."""
    rate, achieved = table.rate, table.achieved
    if len(rate) == 0:
        return np.zeros(0, dtype=bool)
    base = baseline_ratio(rate, achieved)
    return achieved < min_ratio * base * rate


def saturation_point(table: StageTable, min_ratio: float = 0.95) -> tuple[float | None, bool, str]:
    """(value, reached, signal). Not reached: value is the largest goodput seen, a lower bound.

    Reached: the larger of the goodput plateau (median goodput of saturated stages, or the first
    saturated stage's goodput if higher) and the best
    goodput of an unsaturated stage below them, because saturation is the most goodput *sustained*
    and overload can make goodput sag below it.
    """
    rate, achieved = table.rate, table.achieved
    if len(rate) < 2:
        return None, False, ""
    sat = saturated_mask(table, min_ratio)
    if not sat.any():
        return float(np.max(achieved)), False, "goodput followed offered"
    first = int(np.argmax(sat))
    # overload can make goodput sag (timeouts waste work), so the least-overloaded saturated stage
    # counts at least as much as the median of all of them
    plateau = max(float(np.median(achieved[sat])), float(achieved[first]))
    below = achieved[:first][~sat[:first]]
    best_below = float(np.max(below)) if below.size else 0.0
    if best_below >= plateau:
        return best_below, True, "goodput vs offered (best goodput before the plateau sagged)"
    return plateau, True, "goodput vs offered (plateau)"


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
