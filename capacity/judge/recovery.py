"""The recovery rules between stages, as breach records: latency back near its baseline, queues drained.

A stage that leaves a queue behind would make the next stage look worse than it is (and keep hurting
a shared cluster), so the search waits until none of these hold; what still holds when it gives up is
the reason it stopped. Pure: figures in, records out (the waiting loop lives in the search).
"""

from __future__ import annotations

from capacity.breach import RECOVERY, Breach

QUEUE_DRAINED_JOBS = 5
"""A job queue at or below this depth counts as drained (a few jobs are always in flight)."""


def latency_limit_ms(baseline_ms: float | None, factor: float) -> float | None:
    """The probe latency that counts as recovered: ``factor`` x baseline, and at least baseline + 5 ms."""
    return None if baseline_ms is None else max(baseline_ms * factor, baseline_ms + 5.0)


def latency_breach(latency_ms: float | None, limit_ms: float | None, baseline_ms: float | None) -> Breach | None:
    """A breach while the probe latency is unknown (no answer) or above ``limit_ms``; None once recovered."""
    if latency_ms is not None and (limit_ms is None or latency_ms <= limit_ms):
        return None
    text = f"latency {_ms(latency_ms)} ms (baseline {_ms(baseline_ms)} ms)"
    return Breach("latency", "probe_latency_ms", text, latency_ms, limit_ms, window=RECOVERY)


def queue_breach(queue: float | None, backlog: float | None) -> Breach | None:
    """A breach while the job queue or the request backlog is not drained; unknown figures never hold it."""
    if queue is not None and queue > QUEUE_DRAINED_JOBS:
        text = f"job queue still {queue:.0f} deep"
        return Breach("queue", "queue_size", text, queue, float(QUEUE_DRAINED_JOBS), window=RECOVERY)
    if backlog is not None and backlog > 0:
        return Breach("backlog", "backlog", f"request backlog still {backlog:.0f}", backlog, 0.0, window=RECOVERY)
    return None


def _ms(v: float | None) -> str:
    return "nan" if v is None else f"{v:.0f}"
