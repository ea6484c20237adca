"""A bounded in-memory time-series store: what the Datadog agent + backend are to the real cluster.

Per-second points per (metric, tag set); each series keeps at most ``max_points`` (an hour by
default), so memory stays bounded however long the sandbox runs.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from capacity.core.agent_metrics import agent_metrics

Tags = tuple[str, ...]
"""Sorted ``key:value`` strings."""


@dataclass(frozen=True, slots=True)
class MetricInfo:
    kind: str  # "gauge", "count" or "rate": counts default to a sum when rolled up, the others to avg
    unit: str | None


AGENT_PUBLISHED = (
    "ecs.fargate.cpu.percent",
    "ecs.fargate.mem.usage",
    "ecs.fargate.mem.cache",
    "ecs.fargate.mem.limit",
    "puma.pool_capacity",
    "puma.max_threads",
    "puma.busy_threads",
    "puma.backlog",
    "puma.running",
    "redis.key.length",
    "sidekiq.enqueued",  # a level sent once per flush, typed count by the metadata
    "sidekiq.busy",
    "sidekiq.jobs.count",
    "sidekiq.jobs.failure",
)
"""The agent integrations' metrics the sandbox publishes: their type and unit are the metadata's."""
CUSTOM: dict[str, MetricInfo] = {
    # custom metrics (no agent integration emits them): what a team publishes, or the stand-in's own
    "puma.requests.rejected": MetricInfo("count", "request"),
    "sidekiq.queue.size": MetricInfo("gauge", "job"),
    "sidekiq.queue.latency": MetricInfo("gauge", "second"),
    "sidekiq.jobs.enqueued": MetricInfo("count", "job"),
    "trace.rack.request.hits": MetricInfo("count", "hit"),
    "trace.rack.request.errors": MetricInfo("count", "error"),
    "trace.rack.request.duration": MetricInfo("gauge", "second"),
}


def _from_metadata(name: str) -> MetricInfo | None:
    found = agent_metrics().get(name)
    return MetricInfo(found.kind, found.unit or None) if found is not None else None


METRICS: dict[str, MetricInfo] = {
    **{name: info for name in AGENT_PUBLISHED if (info := _from_metadata(name)) is not None},
    **CUSTOM,
}
"""Every metric the sandbox publishes, with its type and unit."""


def metric_info(name: str) -> MetricInfo:
    """A metric's type and unit: the integrations' metadata, else the custom table, else an untyped gauge."""
    return METRICS.get(name) or _from_metadata(name) or MetricInfo("gauge", None)


def make_tags(tags: Iterable[str]) -> Tags:
    return tuple(sorted(set(tags)))


class MetricStore:
    """Series keyed by (metric, tags) holding (unix second, value) points in time order."""

    def __init__(self, max_points: int = 3600) -> None:
        self.max_points = max_points
        self._series: dict[str, dict[Tags, deque[tuple[int, float]]]] = {}

    def add(self, metric: str, tags: Iterable[str], ts: int, value: float) -> None:
        """Record one point; a second point for the same second replaces (gauge) or adds (count)."""
        by_tags = self._series.setdefault(metric, {})
        key = make_tags(tags)
        points = by_tags.get(key)
        if points is None:
            points = by_tags[key] = deque(maxlen=self.max_points)
        if points and points[-1][0] == ts:
            prev = points.pop()[1]
            value = prev + value if metric_info(metric).kind == "count" else value
        elif points and points[-1][0] > ts:  # late point: rare; insert in order
            items = sorted([*points, (ts, value)])
            points.clear()
            points.extend(items[-self.max_points :])
            return
        points.append((int(ts), float(value)))

    def extend(self, metric: str, tags: Iterable[str], points: Iterable[tuple[float, float]]) -> None:
        """Record many points of one series at once (any order), as :meth:`add` would one by one."""
        for ts, value in sorted((int(t), float(v)) for t, v in points):
            self.add(metric, tags, ts, value)

    def series(self, metric: str) -> Iterator[tuple[Tags, deque[tuple[int, float]]]]:
        yield from self._series.get(metric, {}).items()

    def point_count(self) -> int:
        return sum(len(p) for by in self._series.values() for p in by.values())
