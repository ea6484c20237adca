"""The pre-run baseline: what the target's queues and latency look like before stage 1.

A shared staging cluster is rarely idle: a background job queue ten deep, a slow endpoint someone
else is hammering. Recovery between stages means "back within a tolerance of this baseline"
(``judge.recovery``), so a steady queue that no stage of ours made never stops the search. Measured
once, before any load, and kept in ``manifest.json`` as ``baseline``.
"""

from __future__ import annotations

import logging
import math
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from capacity.judge.recovery import Baseline
from capacity.search.recovery_wait import recent_frame

if TYPE_CHECKING:
    from capacity.load.driver import LoadDriver
    from capacity.observe.source import MetricsSource
    from capacity.plan.experiment import Experiment

log = logging.getLogger("capacity.search")

LOOKBACK_INTERVALS = 4
"""The baseline reads the last few emission intervals of the queue metrics (20 s checks: 80 s)."""


def measure_baseline(driver: LoadDriver, source: MetricsSource | None, exp: Experiment) -> Baseline:
    """Probe latency (median of 5) and, with metrics, the recent job queue and backlog."""
    probe = driver.probe_latency_ms(n=5)
    lookback = LOOKBACK_INTERVALS * max(exp.metrics.rollup_seconds, *_intervals(exp))
    frame = recent_frame(source, lookback)
    queue, backlog = steady_value(frame, "queue_size"), steady_value(frame, "backlog")
    log.info("pre-run baseline: queue %s, backlog %s, probe p50 %s ms", queue, backlog, probe)
    return Baseline(queue, backlog, probe, datetime.now(UTC).isoformat())


def _intervals(exp: Experiment) -> list[int]:
    from capacity.observe.queries import query_rollups

    rollups = query_rollups(exp.metrics) if exp.metrics.source != "none" else {}
    return [rollups.get(n, 0) for n in ("queue_size", "backlog")]


def steady_value(frame: Any, metric: str) -> float | None:
    """The largest over groups of each group's median point of ``metric`` (None without a point).

    The median, not the latest point: one spike in the look-back must not become the bar the
    search recovers to.
    """
    if frame is None or getattr(frame, "empty", True) or "metric" not in frame.columns:
        return None
    part = frame[(frame["metric"] == metric) & frame["value"].notna()]
    if part.empty:
        return None
    value = float(part.groupby("group")["value"].median().max())
    return None if math.isnan(value) else value
