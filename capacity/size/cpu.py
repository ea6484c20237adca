"""CPU against goodput: the line the CPU rule sizes from (``cpu_target``) and the CPU share at peak.

Fitted on the unsaturated valid stages (a saturated stage's CPU is not what the load asked for); a
line that does not rise with load gives no CPU rule (said in the recommendation's notes).
"""

from __future__ import annotations

import numpy as np

from capacity.analyze.saturation import saturated_mask
from capacity.analyze.table import StageTable
from capacity.plan.experiment import Cluster


def cpu_line(table: StageTable, column: str) -> tuple[float, float] | None:
    """(intercept, slope per rps) of CPU % against goodput on unsaturated valid stages."""
    y = table.column(column)
    if y is None:
        return None
    x = table.achieved
    ok = np.isfinite(y) & np.isfinite(x) & ~saturated_mask(table)
    if ok.sum() < 2 or np.ptp(x[ok]) == 0:
        return None
    slope, intercept = np.polyfit(x[ok], y[ok], 1)
    if slope <= 0:
        return None
    return float(intercept), float(slope)


def cpu_per_task_at_target(line: tuple[float, float] | None, target: float, cluster: Cluster) -> float | None:
    """Per-task rate at which CPU reaches the autoscaling point, from the CPU-vs-goodput line."""
    if line is None:
        return None
    intercept, slope = line
    at_target = (target * 100.0 - intercept) / slope
    return at_target / cluster.app_tasks if at_target > 0 else None


def cpu_at_peak(line: tuple[float, float] | None, per_task_rps: float, staging_tasks: int) -> float | None:
    """Each task's CPU share at peak on the recommended count, from the CPU line (None without one)."""
    if line is None:
        return None
    return (line[0] + line[1] * per_task_rps * staging_tasks) / 100.0
