"""The recovery rules between stages, as breach records: latency back near its baseline, queues back to theirs.

A stage that leaves a queue behind would make the next stage look worse than it is (and keep hurting
a shared cluster), so the search waits until none of these hold; what still holds when it gives up is
the reason it stopped. "Back" is relative to the run's pre-run :class:`Baseline` (measured before
stage 1): a shared staging cluster may carry a steady background queue that no stage of ours made, and
an absolute "drained" would make the search wait for something it cannot cause. Pure: figures in,
records out (the waiting loop lives in the search).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from capacity.core.breach import RECOVERY, Breach
from capacity.core.outcomes import GuardCode

QUEUE_DRAINED_JOBS = 5
"""Jobs above the baseline that still count as recovered (a few jobs are always in flight)."""
QUEUE_TOLERANCE_SHARE = 0.10
"""And a share of the baseline itself: a steady background queue wobbles with its own load."""


@dataclass(frozen=True)
class Baseline:
    """The target before stage 1: job queue depth, request backlog and probe latency (kept in the manifest)."""

    queue_size: float | None
    backlog: float | None
    probe_p50_ms: float | None
    measured_at: str
    """ISO-8601 UTC time the figures were read."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def queue_limit(baseline_queue: float | None) -> float:
    """The deepest job queue that counts as recovered: baseline + 10% of it + ``QUEUE_DRAINED_JOBS``."""
    base = max(0.0, baseline_queue or 0.0)
    return base * (1.0 + QUEUE_TOLERANCE_SHARE) + QUEUE_DRAINED_JOBS


def backlog_limit(baseline_backlog: float | None) -> float:
    """The largest request backlog that counts as recovered: the baseline's (+10%, whole requests); 0 without."""
    base = max(0.0, baseline_backlog or 0.0)
    return float(math.ceil(base * (1.0 + QUEUE_TOLERANCE_SHARE)))


def latency_limit_ms(baseline_ms: float | None, factor: float) -> float | None:
    """The probe latency that counts as recovered: ``factor`` x baseline, and at least baseline + 5 ms."""
    return None if baseline_ms is None else max(baseline_ms * factor, baseline_ms + 5.0)


def latency_breach(latency_ms: float | None, limit_ms: float | None, baseline_ms: float | None) -> Breach | None:
    """A breach while the probe latency is unknown (no answer) or above ``limit_ms``; None once recovered."""
    if latency_ms is not None and (limit_ms is None or latency_ms <= limit_ms):
        return None
    text = f"latency {_ms(latency_ms)} ms (baseline {_ms(baseline_ms)} ms)"
    return Breach(GuardCode.RECOVERY_LATENCY, "probe_latency_ms", text, latency_ms, limit_ms, window=RECOVERY)


def queue_breach(queue: float | None, backlog: float | None, baseline: Baseline | None = None) -> Breach | None:
    """A breach while the job queue or the request backlog is above its baseline's tolerance; unknown
    figures never hold it."""
    base_q = baseline.queue_size if baseline is not None else None
    base_b = baseline.backlog if baseline is not None else None
    q_limit = queue_limit(base_q)
    if queue is not None and queue > q_limit:
        text = f"job queue still {queue:.0f} deep (baseline {_n(base_q)}, limit {q_limit:.0f})"
        return Breach(GuardCode.RECOVERY_QUEUE, "queue_size", text, queue, q_limit, window=RECOVERY)
    b_limit = backlog_limit(base_b)
    if backlog is not None and backlog > b_limit:
        text = f"request backlog still {backlog:.0f} (baseline {_n(base_b)})"
        return Breach(GuardCode.BACKLOG, "backlog", text, backlog, b_limit, window=RECOVERY)
    return None


def _ms(v: float | None) -> str:
    return "nan" if v is None else f"{v:.0f}"


def _n(v: float | None) -> str:
    return "unknown" if v is None else f"{v:.0f}"
