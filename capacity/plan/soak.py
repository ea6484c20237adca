"""The experiment file's ``[soak]`` section: how a soak holds its rate, its shape, and its drift limits.

A soak holds one open-model rate (or a shape around it) for a long time, in segments stored as they
end, and then fits how memory, the job queue, latency and errors drift (docs/design.md, soak). A
*shape* replays batched traffic on top of the base rate: ``burst`` adds ``burst_rps`` for
``burst_seconds`` every ``burst_period_s``; ``points`` follows ``(seconds, rate)`` points (absolute
req/s, linear between points, a repeated time is a step) that repeat every last point's seconds.
"""

from __future__ import annotations

import bisect
import math
from typing import Literal

from pydantic import Field, model_validator

from capacity.plan.base import NonNegFloat, Strict

Point = tuple[float, float]


class SoakSettings(Strict):
    """``[soak]``: segments, shape and the thresholds above which a drift counts as growing."""

    segment_seconds: float = Field(60.0, gt=0, le=3600)
    """Each segment is stored (a stage in the results folder) as soon as it ends."""
    warmup_seconds: NonNegFloat = 10.0
    """Excluded from the fits, at the start of the first segment only (the load never pauses)."""
    arrival: Literal["uniform", "poisson"] = "uniform"
    shape: Literal["flat", "burst", "points"] = "flat"
    burst_rps: NonNegFloat = 0.0
    """Extra rate during a burst, on top of the base rate (``shape = "burst"``)."""
    burst_seconds: float = Field(10.0, gt=0)
    burst_period_s: float = Field(60.0, gt=0)
    burst_offset_s: NonNegFloat = 0.0
    """When the first burst starts, in seconds from the soak's start."""
    points: list[tuple[NonNegFloat, NonNegFloat]] = Field(default_factory=list)
    """``shape = "points"``: ``[[seconds, req/s], ...]`` from 0, repeating every last point's seconds."""
    max_mem_mib_per_hour: NonNegFloat = 10.0
    """Memory per app task growing faster than this (and surely above 0) fails the soak."""
    max_queue_jobs_per_hour: NonNegFloat = 100.0
    max_p95_ms_per_hour: NonNegFloat = 20.0
    max_error_ratio_per_hour: NonNegFloat = 0.001
    min_hours_to_limit: NonNegFloat | None = None
    """When set, a growing drift that would reach its limit sooner than this also fails the soak."""
    queue_limit_jobs: NonNegFloat | None = None
    """The job-queue length counted as the queue's limit (time to limit); none known by default."""
    confidence: float = Field(0.95, gt=0.5, lt=1)

    @model_validator(mode="after")
    def _shape_complete(self) -> SoakSettings:
        if self.shape == "burst":
            if self.burst_rps <= 0:
                raise ValueError('shape "burst" needs burst_rps > 0')
            if self.burst_seconds >= self.burst_period_s:
                raise ValueError(
                    f"burst_seconds ({self.burst_seconds:g}) must be shorter than burst_period_s "
                    f"({self.burst_period_s:g})"
                )
        if self.shape == "points":
            times = [t for t, _ in self.points]
            if len(times) < 2 or times[0] != 0 or times[-1] <= 0 or times != sorted(times):
                raise ValueError('shape "points" needs [seconds, rate] points in order, from 0 to a later time')
            if not any(r > 0 for _, r in self.points):
                raise ValueError('shape "points" needs a rate above 0')
        return self

    def thresholds(self) -> dict[str, float]:
        """Drift name (the ``--json`` contract's keys) -> the slope above which it counts as growing."""
        return {
            "mem_mib_per_hour": self.max_mem_mib_per_hour,
            "queue_jobs_per_hour": self.max_queue_jobs_per_hour,
            "p95_ms_per_hour": self.max_p95_ms_per_hour,
            "error_ratio_per_hour": self.max_error_ratio_per_hour,
        }

    def rate_points(self, base_rps: float | None, duration_s: float) -> list[Point]:
        """The soak's whole rate as ``(seconds, req/s)`` points over ``[0, duration_s]`` (steps repeat a time)."""
        if self.shape == "points":
            return _repeat(self.points, duration_s)
        if base_rps is None or base_rps <= 0:
            raise ValueError("the soak needs a base rate above 0")
        if self.shape == "flat":
            return [(0.0, base_rps), (duration_s, base_rps)]
        high = base_rps + self.burst_rps
        out: list[Point] = [(0.0, base_rps)]
        k = 0
        while (start := self.burst_offset_s + k * self.burst_period_s) < duration_s:
            end = min(start + self.burst_seconds, duration_s)
            out += [(start, base_rps), (start, high), (end, high), (end, base_rps)]
            k += 1
        out.append((duration_s, base_rps))
        return out


def _repeat(points: list[tuple[float, float]], duration_s: float) -> list[Point]:
    period = points[-1][0]
    out: list[Point] = []
    for k in range(math.ceil(duration_s / period)):
        out += [(t + k * period, r) for t, r in points]
    return slice_points(out, 0.0, duration_s)


def value_at(points: list[Point], t: float, *, right: bool) -> float:
    """The rate at ``t``: just after it (``right``) or just before it, where a repeated time is a step."""
    times = [p[0] for p in points]
    if right:
        i = bisect.bisect_right(times, t) - 1
        if i < 0:
            return points[0][1]
        if i >= len(points) - 1:
            return points[-1][1]
        a, b = points[i], points[i + 1]
    else:
        i = bisect.bisect_left(times, t)
        if i <= 0:
            return points[0][1]
        if i >= len(points):
            return points[-1][1]
        a, b = points[i - 1], points[i]
    return a[1] + (b[1] - a[1]) * (t - a[0]) / (b[0] - a[0]) if b[0] > a[0] else b[1]


def slice_points(points: list[Point], start: float, end: float) -> list[Point]:
    """The part of ``points`` over ``[start, end]``, shifted to start at 0 (one segment's shape)."""
    inner = [(t - start, r) for t, r in points if start < t < end]
    return [(0.0, value_at(points, start, right=True)), *inner, (end - start, value_at(points, end, right=False))]
