"""Datadog v1 ``/api/v1/query`` answers -> tidy points, tolerating what real answers contain.

Facts this parser relies on (Datadog API reference, "Query timeseries points"): ``from``/``to``
are epoch seconds; each ``series[]`` entry has ``pointlist`` of ``[ms, value | null]``,
``interval`` in seconds, ``tag_set`` (the group), ``unit`` (``[unit, per_unit]`` with
``family``/``scale_factor``) and ``query_index`` (which of several comma-separated queries it
answers). Anything malformed marks that query missing instead of failing the run.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from capacity.observe.queries import metric_name

SCALED_FAMILIES = frozenset({"bytes", "time", "percentage"})
"""Unit families whose ``scale_factor`` converts to the base unit (byte, second, percent)."""


@dataclass
class Point:
    name: str
    group: str
    t: float
    value: float


@dataclass
class ParsedAnswer:
    points: list[Point] = field(default_factory=list)
    intervals: dict[str, int] = field(default_factory=dict)
    """Query name -> the interval (s) Datadog used (largest over its series)."""
    failed: dict[str, str] = field(default_factory=dict)
    """Query name -> why its answer is unusable."""
    warnings: list[str] = field(default_factory=list)


def group_label(tag_set: Any) -> str:
    if isinstance(tag_set, list) and tag_set:
        return ",".join(str(t) for t in tag_set)
    return "*"


def _scale(unit: Any) -> float:
    if not isinstance(unit, list) or not unit or not isinstance(unit[0], dict):
        return 1.0
    u = unit[0]
    factor = u.get("scale_factor")
    if u.get("family") in SCALED_FAMILIES and isinstance(factor, int | float) and factor > 0:
        return float(factor)
    return 1.0


def _number(v: Any) -> float | None:
    if isinstance(v, bool) or not isinstance(v, int | float):
        return None
    f = float(v)
    return f if math.isfinite(f) else None


def _match(series: dict[str, Any], names: list[str], metrics: list[str | None]) -> str | None:
    idx = series.get("query_index")
    if isinstance(idx, int) and not isinstance(idx, bool) and 0 <= idx < len(names):
        return names[idx]
    if len(names) == 1:
        return names[0]
    metric = series.get("metric")
    hits = [n for n, m in zip(names, metrics, strict=True) if m == metric]
    return hits[0] if len(hits) == 1 else None


def parse_v1(body: Any, names: list[str], queries: list[str]) -> ParsedAnswer:
    """Split one batched v1 answer back into per-query points (values in base units)."""
    out = ParsedAnswer()
    if not isinstance(body, dict):
        for n in names:
            out.failed[n] = "answer is not a JSON object"
        return out
    status = body.get("status")
    if status not in (None, "ok"):
        why = str(body.get("error") or body.get("message") or f"status {status!r}")[:200]
        for n in names:
            out.failed[n] = why
        return out
    series_list = body.get("series")
    if not isinstance(series_list, list):
        for n in names:
            out.failed[n] = "answer has no 'series' list"
        return out
    metrics = [metric_name(q) for q in queries]
    bad_points: dict[str, int] = {}
    for s in series_list:
        if not isinstance(s, dict):
            out.warnings.append("ignored a series that is not an object")
            continue
        name = _match(s, names, metrics)
        if name is None:
            out.warnings.append(f"ignored a series of {s.get('metric')!r} matching no query")
            continue
        pointlist = s.get("pointlist")
        if not isinstance(pointlist, list):
            out.failed.setdefault(name, "series without a 'pointlist'")
            continue
        interval = s.get("interval")
        if isinstance(interval, int | float) and not isinstance(interval, bool) and interval > 0:
            out.intervals[name] = max(out.intervals.get(name, 0), int(interval))
        scale = _scale(s.get("unit"))
        group = group_label(s.get("tag_set"))
        for p in pointlist:
            if not isinstance(p, list | tuple) or len(p) != 2:
                bad_points[name] = bad_points.get(name, 0) + 1
                continue
            ts = _number(p[0])
            if ts is None:
                bad_points[name] = bad_points.get(name, 0) + 1
                continue
            if p[1] is None:  # Datadog's "no data in this interval"
                continue
            v = _number(p[1])
            if v is None:
                bad_points[name] = bad_points.get(name, 0) + 1
                continue
            out.points.append(Point(name, group, ts / 1000.0, v * scale))
    for qname, count in sorted(bad_points.items()):
        out.warnings.append(f"{qname}: ignored {count} malformed point(s)")
    return out
