"""Datadog v1 ``/api/v1/query`` over the sandbox's metric store: evaluator and response shape.

The query text is parsed by :mod:`capacity.ddquery` (the one parser of the language, shared with
the metrics source and the tests' fake); ``.as_count()`` and ``.fill(...)`` are accepted and
ignored here. As in Datadog, time aggregation (the rollup, per source series, into buckets aligned to
multiples of the interval) comes before space aggregation (across the series of a group).
"""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Any

from capacity.ddquery import ParsedQuery, QueryError, parse_query, split_queries
from capacity.sandbox.metricstore import MetricStore, Tags, metric_info

__all__ = ["QueryError", "evaluate", "parse_query", "query_response", "split_queries"]

MAX_POINTS_PER_SERIES = 1500
"""Above this many buckets the default interval is widened, as Datadog does for long windows."""

UNITS: dict[str, dict[str, Any]] = {
    "percent": {"family": "percentage", "name": "percent", "plural": "percent", "scale_factor": 1.0, "short_name": "%"},
    "byte": {"family": "bytes", "name": "byte", "plural": "bytes", "scale_factor": 1.0, "short_name": "B"},
    "second": {"family": "time", "name": "second", "plural": "seconds", "scale_factor": 1.0, "short_name": "s"},
    "thread": {"family": "system", "name": "thread", "plural": "threads", "scale_factor": 1.0},
    "unit": {"family": "general", "name": "unit", "plural": "units", "scale_factor": 1.0},
    "request": {"family": "network", "name": "request", "plural": "requests", "scale_factor": 1.0, "short_name": "req"},
    "job": {"family": "general", "name": "job", "plural": "jobs", "scale_factor": 1.0},
    "hit": {"family": "general", "name": "hit", "plural": "hits", "scale_factor": 1.0},
    "error": {"family": "general", "name": "error", "plural": "errors", "scale_factor": 1.0},
}


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


def evaluate(store: MetricStore, q: ParsedQuery, from_s: int, to_s: int, index: int = 0) -> list[dict[str, Any]]:
    """Series (Datadog ``MetricsQueryMetadata`` dicts) for one parsed query over ``[from_s, to_s]``."""
    interval = max(q.rollup_s or 1, default_interval(from_s, to_s))
    info = metric_info(q.metric)
    time_fn = q.rollup_fn or ("sum" if info.kind == "count" else "avg")
    # group -> bucket -> per-series rolled-up values
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
            if from_s <= ts <= to_s:
                buckets[ts - ts % interval].append(value)
        for b, vals in buckets.items():
            groups[group][b].append(_combine(time_fn, vals))
    out: list[dict[str, Any]] = []
    unit = UNITS.get(info.unit or "")
    for group in sorted(groups):
        by_bucket = groups[group]
        pointlist: list[list[float]] = []
        for b in sorted(by_bucket):
            value = _combine(q.space_agg, by_bucket[b])
            if q.as_rate and info.kind == "count":
                value /= interval
            pointlist.append([float(b * 1000), value])
        if not pointlist:
            continue
        scope_terms = [*q.scope, *group]
        scope = ",".join(scope_terms) if scope_terms else "*"
        suffix = "".join(f".{f}()" for f in q.functions if f != "rollup")
        if q.rollup_fn or q.rollup_s:
            args = ", ".join(str(a) for a in (q.rollup_fn, q.rollup_s) if a)
            suffix = f".rollup({args})" + suffix
        out.append(
            {
                "metric": q.metric,
                "display_name": q.metric,
                "pointlist": pointlist,
                "start": int(pointlist[0][0]),
                "end": int(pointlist[-1][0]) + interval * 1000 - 1,
                "interval": interval,
                "length": len(pointlist),
                "aggr": q.space_agg,
                "scope": scope,
                "tag_set": list(group),
                "expression": f"{q.space_agg}:{q.metric}{{{scope}}}{suffix}",
                "unit": [dict(unit) if unit else None, None],
                "query_index": index,
            }
        )
    return out


def query_response(store: MetricStore, query: str, from_s: int, to_s: int) -> dict[str, Any]:
    """The full v1 response body; raises ``QueryError`` for text Datadog would reject with 400."""
    if to_s < from_s:
        raise QueryError("The value provided for parameter 'to' is before 'from'")
    parsed = [parse_query(t) for t in split_queries(query)]
    series: list[dict[str, Any]] = []
    for i, q in enumerate(parsed):
        series.extend(evaluate(store, q, from_s, to_s, i))
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
