"""Datadog v1 ``/api/v1/query`` over a metric store: the one evaluator and response shape.

Used by the sandbox's endpoint and by the tests' fake Datadog (which adds only faults, lag and auth),
so both prove the same semantics. The query text is parsed by :mod:`capacity.observe.query_language` (the one parser
of the language); ``.as_count()`` and ``.fill(...)`` are accepted and ignored here. As in Datadog, time
aggregation (the rollup, per source series, into buckets aligned to multiples of the interval) comes
before space aggregation (across the series of a group). Without ``.rollup(fn)`` the time aggregation
is Datadog's default: ``avg`` for a gauge, ``sum`` for a count (what ``.as_count()`` gives, the in-app
default for counts); a metric's type and unit come from the agent integrations' metadata
(:func:`capacity.sandbox.metricstore.metric_info`).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from capacity.observe.query_language import ParsedQuery, QueryError, parse_query, split_queries
from capacity.sandbox.metricstore import MetricStore, Tags, metric_info

__all__ = ["QueryError", "View", "evaluate", "parse_query", "query_response", "split_queries"]

MAX_POINTS_PER_SERIES = 1500
"""Above this many buckets the default interval is widened, as Datadog does for long windows."""


def _unit(family: str, name: str, plural: str, short: str | None = None, scale: float = 1.0) -> dict[str, Any]:
    out: dict[str, Any] = {"family": family, "name": name, "plural": plural, "scale_factor": scale}
    if short:
        out["short_name"] = short
    return out


UNITS: dict[str, dict[str, Any]] = {
    "percent": _unit("percentage", "percent", "percent", "%"),
    "byte": _unit("bytes", "byte", "bytes", "B"),
    "mebibyte": _unit("bytes", "mebibyte", "mebibytes", "MiB", 1048576.0),
    "nanosecond": _unit("time", "nanosecond", "nanoseconds", "ns", 1e-9),
    "millisecond": _unit("time", "millisecond", "milliseconds", "ms", 0.001),
    "second": _unit("time", "second", "seconds", "s"),
    "thread": _unit("system", "thread", "threads"),
    "unit": _unit("general", "unit", "units"),
    "request": _unit("network", "request", "requests", "req"),
    "job": _unit("general", "job", "jobs"),
    "hit": _unit("general", "hit", "hits"),
    "error": _unit("general", "error", "errors"),
    "command": _unit("general", "command", "commands"),
    "connection": _unit("network", "connection", "connections"),
    "key": _unit("db", "key", "keys"),
}
"""Datadog's unit objects (the ``unit`` of a response series), by ``unit_name``: every unit of the
integrations' metadata (``capacity.core.agent_metrics``) and of the sandbox's custom metrics."""


@dataclass(frozen=True)
class View:
    """What a backend shows of its store beyond the points themselves."""

    nulls: bool = False
    """Empty buckets of the query's grid come back as ``null`` (Datadog does; the sandbox omits them)."""
    units: Mapping[str, str] = field(default_factory=dict)
    """Per-metric unit edits (Datadog's metric metadata), over the integrations' own units."""
    visible_until: Callable[[str], float] | None = None
    """metric -> the newest point time the backend has ingested (late data is invisible before it)."""


def _combine(fn: str, values: list[float]) -> float:
    if fn == "avg":
        return sum(values) / len(values)
    if fn == "sum":
        return sum(values)
    if fn == "max":
        return max(values)
    return min(values)


def default_interval(from_s: int, to_s: int) -> int:
    return max(1, math.ceil((to_s - from_s + 1) / MAX_POINTS_PER_SERIES))


def _rolled_up(
    store: MetricStore, q: ParsedQuery, window: tuple[int, float], interval: int, time_fn: str
) -> dict[Tags, dict[int, list[float]]]:
    """group -> bucket -> each source series' rolled-up value (time aggregation, before space)."""
    from_s, until = window
    groups: dict[Tags, dict[int, list[float]]] = defaultdict(lambda: defaultdict(list))
    for tags, points in store.series(q.metric):
        if not all(f.matches(tags) for f in q.filters):
            continue
        tag_map: dict[str, str] = {}
        for t in tags:
            k, _, v = t.partition(":")
            tag_map.setdefault(k, v)
        group = tuple(f"{k}:{tag_map.get(k, 'N/A')}" for k in q.group_by)
        buckets: dict[int, list[float]] = defaultdict(list)
        for ts, value in points:
            if from_s <= ts <= until:
                buckets[ts - ts % interval].append(value)
        for b, vals in buckets.items():
            groups[group][b].append(_combine(time_fn, vals))
    return groups


def _expression(q: ParsedQuery, scope: str) -> str:
    suffix = "".join(f".{f}()" for f in q.functions if f != "rollup")
    if q.rollup_fn or q.rollup_s:
        args = ", ".join(str(a) for a in (q.rollup_fn, q.rollup_s) if a)
        suffix = f".rollup({args})" + suffix
    return f"{q.space_agg}:{q.metric}{{{scope}}}{suffix}"


def evaluate(
    store: MetricStore, q: ParsedQuery, from_s: int, to_s: int, index: int = 0, view: View | None = None
) -> list[dict[str, Any]]:
    """Series (Datadog ``MetricsQueryMetadata`` dicts) for one parsed query over ``[from_s, to_s]``."""
    view = view or View()
    interval = max(q.rollup_s or 1, default_interval(from_s, to_s))
    info = metric_info(q.metric)
    time_fn = q.rollup_fn or ("sum" if info.kind == "count" else "avg")
    until = min(to_s, view.visible_until(q.metric)) if view.visible_until else to_s
    groups = _rolled_up(store, q, (from_s, until), interval, time_fn)
    unit = UNITS.get(view.units.get(q.metric) or info.unit or "")
    out: list[dict[str, Any]] = []
    for group in sorted(groups):
        by_bucket = groups[group]
        grid = range(from_s - from_s % interval, to_s + 1, interval) if view.nulls else sorted(by_bucket)
        pointlist: list[list[float | None]] = []
        for b in grid:
            value = _combine(q.space_agg, by_bucket[b]) if b in by_bucket else None
            if value is not None and q.as_rate and info.kind == "count":
                value /= interval
            pointlist.append([float(b * 1000), value])
        if not pointlist:
            continue
        scope_terms = [*q.scope, *group]
        scope = ",".join(scope_terms) if scope_terms else "*"
        out.append(
            {
                "metric": q.metric,
                "display_name": q.metric,
                "pointlist": pointlist,
                "start": int(pointlist[0][0] or 0),
                "end": int(pointlist[-1][0] or 0) + interval * 1000 - 1,
                "interval": interval,
                "length": len(pointlist),
                "aggr": q.space_agg,
                "scope": scope,
                "tag_set": list(group),
                "expression": _expression(q, scope),
                "unit": [dict(unit) if unit else None, None],
                "query_index": index,
            }
        )
    return out


def query_response(store: MetricStore, query: str, from_s: int, to_s: int, view: View | None = None) -> dict[str, Any]:
    """The full v1 response body; raises ``QueryError`` for text Datadog would reject with 400."""
    if to_s < from_s:
        raise QueryError("The value provided for parameter 'to' is before 'from'")
    parsed = [parse_query(t) for t in split_queries(query)]
    series: list[dict[str, Any]] = []
    for i, q in enumerate(parsed):
        series.extend(evaluate(store, q, from_s, to_s, i, view))
    group_by = sorted({g for q in parsed for g in q.group_by})
    return {
        "status": "ok",
        "res_type": "time_series",
        "resp_version": 1,
        "query": query,
        "from_date": from_s * 1000,
        "to_date": to_s * 1000,
        "series": series,
        "values": [],
        "times": [],
        "message": "",
        "group_by": group_by,
    }
