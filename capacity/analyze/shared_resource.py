"""Which shared resource bends a scaling curve: a figure of the one database that rises with the task count.

Adding app tasks adds Puma threads, ActiveRecord pools and CPU with them; what they all share is the
database (and Redis). When a scale series' capacity bends, the question is whether the shared
resource's own figures rose with the task count at each size's peak stage: lock waits (check-ins
queueing on hot rows) or the share of ``max_connections`` in use. This names it when one of them
rises monotonically over at least three sizes, doubles from the smallest to the largest and ends
at its limit (the bottleneck rule's threshold). Pure: (tasks, metrics) pairs in, a record or None out.
"""

from __future__ import annotations

import itertools
from dataclasses import asdict, dataclass
from typing import Any

from capacity.analyze.bottleneck import CONNECTIONS_NEAR_MAX, LOCK_WAITS_MIN

SHARED_FIGURES: tuple[tuple[str, str, str, float], ...] = (
    ("db_lock_waits", "database", "queries waiting on a lock (postgresql.waiting_queries)", LOCK_WAITS_MIN),
    ("db_connections_pct_max", "database", "share of max_connections in use", CONNECTIONS_NEAR_MAX),
)
"""(metric key, resource, what it is, the level at which it limits)."""
MIN_SIZES = 3
RISE_FACTOR = 2.0


@dataclass(frozen=True)
class SharedResource:
    resource: str
    metric: str
    evidence: str
    values: dict[int, float]
    """App tasks -> the figure at that size's peak stage."""

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["values"] = {str(k): v for k, v in self.values.items()}
        return out


def _fig(v: float) -> str:
    return f"{v:.2f}" if abs(v) < 10 else f"{v:.0f}"


def shared_resource(sizes: list[tuple[int, dict[str, float | None]]]) -> SharedResource | None:
    """The first shared figure that rises with the app task count (see module docstring), else None."""
    for key, resource, what, limit in SHARED_FIGURES:
        points = sorted((n, float(v)) for n, m in sizes if isinstance(v := m.get(key), int | float))
        if len(points) < MIN_SIZES:
            continue
        ys = [y for _, y in points]
        rising = all(b >= a for a, b in itertools.pairwise(ys)) and ys[-1] > ys[0]
        if not rising or ys[-1] < limit or ys[-1] < RISE_FACTOR * max(ys[0], 1e-9):
            continue
        listing = ", ".join(f"{_fig(y)} at {n}" for n, y in points)
        return SharedResource(
            resource=resource,
            metric=key,
            evidence=f"{what} rose with the app tasks: {listing} task(s), at each size's peak stage",
            values=dict(points),
        )
    return None


def peak_stage_metrics(stages: list[Any]) -> dict[str, float | None]:
    """The metrics of the valid stage with the most goodput (where a size's capacity was measured)."""
    valid = [s for s in stages if s.verdict.is_valid and s.achieved_rps > 0]
    return dict(max(valid, key=lambda s: s.achieved_rps).metrics) if valid else {}
