"""Between stages: wait until the target is back to its baseline before offering more load.

The rules (latency near baseline, queues drained) are breach records from ``judge.recovery``; this
module is the waiting loop and the metrics query that feeds it.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from capacity.core.breach import Breach
from capacity.core.errors import CapacityError
from capacity.core.signals import InterruptFlag
from capacity.judge.recovery import Baseline, latency_breach, latency_limit_ms, queue_breach
from capacity.plan.experiment import Experiment

if TYPE_CHECKING:
    from capacity.load.driver import LoadDriver
    from capacity.observe.source import MetricsSource
    from capacity.search.progress import Progress

log = logging.getLogger("capacity.search")


@dataclass(frozen=True)
class Recovery:
    """The outcome of a recovery wait: ``breach`` is what still held when it gave up (None once recovered)."""

    ok: bool
    breach: Breach | None = None
    timeout_s: float = 0.0

    @property
    def detail(self) -> str:
        what = f": {self.breach.text}" if self.breach is not None else ""
        return "" if self.ok else f"target did not recover within {self.timeout_s:g} s{what}"


def wait_for_recovery(
    driver: LoadDriver,
    source: MetricsSource | None,
    baseline_ms: float | None,
    exp: Experiment,
    flag: InterruptFlag,
    progress: Progress | None = None,
    *,
    baseline: Baseline | None = None,
) -> Recovery:
    """Probe latency (and, with metrics, the queues) until both are back within the pre-run ``baseline``'s
    tolerance (absolute limits without one), or ``recovery_timeout_s`` passes."""
    plan = exp.stages
    deadline = time.monotonic() + plan.recovery_timeout_s
    limit_ms = latency_limit_ms(baseline_ms, plan.recovery_latency_factor)
    # server metrics change once per rollup: query them that often, not on every latency probe
    metrics_every = min(float(exp.metrics.rollup_seconds), exp.metrics.poll_interval_s)
    lookback_s = max(3.0, 3.0 * exp.metrics.rollup_seconds)
    next_metrics_at = 0.0
    queue: Breach | None = None
    while True:
        latency = latency_breach(driver.probe_latency_ms(n=3), limit_ms, baseline_ms)
        if time.monotonic() >= next_metrics_at:
            queue = queues_still_full(source, lookback_s, baseline)
            next_metrics_at = time.monotonic() + metrics_every
        last = latency or queue
        if last is None:
            return Recovery(True)
        if progress is not None:
            progress.note(f"waiting for recovery: {last.text}")
        if flag or time.monotonic() >= deadline:
            break
        time.sleep(min(0.25, max(0.05, deadline - time.monotonic())))
    if progress is not None:
        progress.note("")
    return Recovery(False, last, plan.recovery_timeout_s)


def queues_still_full(
    source: MetricsSource | None, lookback_s: float = 3.0, baseline: Baseline | None = None
) -> Breach | None:
    """What is still queued beyond ``baseline`` by the *latest* points of the job queue and request backlog
    (None if back).

    The look-back spans a few rollup intervals (agent metrics in real Datadog arrive in 10-20 s
    buckets, not per second); a queue with no recent point counts as unknown and leaves the decision
    to the latency probe, with a log line saying so.
    """
    frame = recent_frame(source, lookback_s)
    if frame is None:
        return None
    queue = latest_value(frame, "queue_size")
    if queue is None:
        log.info("recovery: no job-queue point in the last %.0f s; judging by latency only", lookback_s)
    return queue_breach(queue, latest_value(frame, "backlog"), baseline)


def recent_frame(source: MetricsSource | None, lookback_s: float) -> Any:
    """The metrics frame of the last ``lookback_s`` seconds, without waiting (None: no source or no answer)."""
    if source is None:
        return None
    from capacity.observe.source import StageWindow

    end = datetime.now(UTC)
    try:
        sm = source.fetch_stage(StageWindow(stage=-1, start=end - timedelta(seconds=lookback_s), end=end), wait=False)
    except CapacityError:
        return None
    return sm.frame


def latest_value(frame: Any, metric: str) -> float | None:
    """The largest over groups of each group's latest non-null point of ``metric`` (None if no point)."""
    if frame is None or getattr(frame, "empty", True) or "metric" not in frame.columns:
        return None
    part = frame[(frame["metric"] == metric) & frame["value"].notna()]
    if part.empty:
        return None
    last = part.sort_values("t").groupby("group", sort=False)["value"].last()
    value = float(last.max())
    return None if math.isnan(value) else value
