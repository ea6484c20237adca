"""The Datadog v1 query emulation against a store with known points."""

from __future__ import annotations

import pytest

from capacity.sandbox.metricstore import MetricStore
from capacity.sandbox.query_eval import QueryError, parse_query, query_response, split_queries

T0 = 1_700_000_000  # a multiple of 10 s


def _store() -> MetricStore:
    s = MetricStore()
    for i in range(10):
        s.add("cpu", ["svc:app", "task:a"], T0 + i, 10.0 + i)  # 10..19
        s.add("cpu", ["svc:app", "task:b"], T0 + i, 30.0)
        s.add("cpu", ["svc:worker", "task:c"], T0 + i, 100.0)
        s.add("sidekiq.jobs.count", ["queue:default"], T0 + i, 2.0)
    return s


def _series(resp: dict, tag: str | None = None) -> dict:
    for s in resp["series"]:
        if tag is None or tag in s["tag_set"]:
            return s
    raise AssertionError(f"no series with {tag}: {resp['series']}")


def test_shape_and_units_of_the_v1_response() -> None:
    r = query_response(_store(), "avg:cpu{svc:app}", T0, T0 + 9)
    assert r["status"] == "ok" and r["res_type"] == "time_series"
    assert (r["from_date"], r["to_date"]) == (T0 * 1000, (T0 + 9) * 1000)
    s = _series(r)
    assert s["interval"] == 1 and s["length"] == 10 and s["scope"] == "svc:app" and s["tag_set"] == []
    assert s["start"] == T0 * 1000 and s["end"] == (T0 + 9) * 1000 + 999
    assert s["pointlist"][0] == [T0 * 1000, 20.0]  # avg(10, 30)
    assert s["expression"] == "avg:cpu{svc:app}" and s["aggr"] == "avg"


@pytest.mark.parametrize(("agg", "first"), [("avg", 20.0), ("max", 30.0), ("min", 10.0), ("sum", 40.0)])
def test_space_aggregators(agg: str, first: float) -> None:
    s = _series(query_response(_store(), f"{agg}:cpu{{svc:app}}", T0, T0 + 9))
    assert s["pointlist"][0][1] == first


def test_group_by_and_star_scope() -> None:
    r = query_response(_store(), "avg:cpu{*} by {task}", T0, T0 + 9)
    assert sorted(tuple(s["tag_set"]) for s in r["series"]) == [("task:a",), ("task:b",), ("task:c",)]
    assert [p[1] for p in _series(r, "task:a")["pointlist"]] == [10.0 + i for i in range(10)]
    assert _series(r, "task:c")["scope"] == "task:c"
    assert r["group_by"] == ["task"]


def test_rollup_time_aggregation_comes_before_space() -> None:
    r = query_response(_store(), "max:cpu{svc:app}.rollup(avg, 5)", T0, T0 + 9)
    s = _series(r)
    assert s["interval"] == 5 and s["length"] == 2
    # task a: avg(10..14)=12, avg(15..19)=17; task b 30 -> max over tasks = 30 both
    assert [p[1] for p in s["pointlist"]] == [30.0, 30.0]
    r = query_response(_store(), "avg:cpu{task:a}.rollup(max, 5)", T0, T0 + 9)
    assert [p[1] for p in _series(r)["pointlist"]] == [14.0, 19.0]
    assert [p[0] for p in _series(r)["pointlist"]] == [T0 * 1000, (T0 + 5) * 1000]


def test_counts_sum_by_default_and_as_rate() -> None:
    r = query_response(_store(), "sum:sidekiq.jobs.count{queue:default}.rollup(10)", T0, T0 + 9)
    assert [p[1] for p in _series(r)["pointlist"]] == [20.0]
    r = query_response(_store(), "sum:sidekiq.jobs.count{*}.rollup(sum, 10).as_rate()", T0, T0 + 9)
    assert [p[1] for p in _series(r)["pointlist"]] == [2.0]


def test_negation_wildcard_and_window() -> None:
    r = query_response(_store(), "sum:cpu{!svc:worker,task:*}", T0 + 2, T0 + 3)
    assert [p[1] for p in _series(r)["pointlist"]] == [42.0, 43.0]
    assert query_response(_store(), "avg:cpu{svc:nope}", T0, T0 + 9)["series"] == []


def test_several_queries_in_one_request() -> None:
    r = query_response(_store(), "avg:cpu{task:a}, sum:sidekiq.jobs.count{*}", T0, T0 + 9)
    assert [s["query_index"] for s in r["series"]] == [0, 1]
    assert split_queries("a:m{x:1,y:2} by {t},b:n{*}.rollup(avg, 5)") == [
        "a:m{x:1,y:2} by {t}",
        "b:n{*}.rollup(avg, 5)",
    ]


@pytest.mark.parametrize(
    "bad", ["cpu", "median:cpu{*}", "avg:cpu{}", "avg:cpu{*}.top(5)", "avg:cpu{*}.rollup(avg, x)", "avg:cpu{*},"]
)
def test_bad_queries_raise(bad: str) -> None:
    with pytest.raises(QueryError):
        query_response(_store(), bad, T0, T0 + 9)


def test_store_is_bounded_and_counts_accumulate() -> None:
    s = MetricStore(max_points=5)
    for i in range(20):
        s.add("g", ["a:b"], T0 + i, float(i))
    assert s.point_count() == 5
    s.add("trace.rack.request.hits", ["r:x"], T0, 2)
    s.add("trace.rack.request.hits", ["r:x"], T0, 3)
    s.add("g2", ["r:x"], T0, 2)
    s.add("g2", ["r:x"], T0, 3)
    assert list(next(s.series("trace.rack.request.hits"))[1]) == [(T0, 5.0)]
    assert list(next(s.series("g2"))[1]) == [(T0, 3.0)]
    assert parse_query("cpu{*}").space_agg == "avg"
