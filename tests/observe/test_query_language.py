"""The one parser of the Datadog query language (``observe.query_language``): what each part of a query means."""

from __future__ import annotations

import pytest

from capacity.observe.query_language import QueryError, TagFilter, parse_query, query_head, split_queries


def test_space_aggregator_metric_scope_and_grouping() -> None:
    q = parse_query("max:sidekiq.queue.size{cluster:staging,!queue:low} by {queue,task_arn}")
    assert (q.space_agg, q.metric) == ("max", "sidekiq.queue.size")
    assert q.scope == ("cluster:staging", "!queue:low")
    assert q.filters == (TagFilter("cluster", "staging"), TagFilter("queue", "low", negate=True))
    assert q.group_by == ("queue", "task_arn")
    assert parse_query("cpu{*}").space_agg == "avg" and parse_query("cpu{*}").scope == ()


def test_rollup_and_functions() -> None:
    q = parse_query("sum:sidekiq.jobs.count{*}.rollup(sum, 10).as_rate()")
    assert (q.rollup_fn, q.rollup_s, q.as_rate) == ("sum", 10, True)
    assert q.functions == ("rollup", "as_rate")
    assert parse_query("avg:x{*}.rollup(5)").rollup_fn is None and parse_query("avg:x{*}.rollup(5)").rollup_s == 5
    assert parse_query("avg:x{*}.as_count().fill(null)").functions == ("as_count", "fill")


def test_filters_match_tags_with_wildcards_and_negation() -> None:
    tags = ("cluster:staging", "queue:mailers", "env")
    assert TagFilter("queue", "mail*").matches(tags)
    assert not TagFilter("queue", "mail*", negate=True).matches(tags)
    assert TagFilter(None, "env").matches(tags) and not TagFilter("cluster", "prod").matches(tags)


@pytest.mark.parametrize(
    "text",
    [
        "count:x{*}",  # unknown aggregator
        "avg:x{}",  # empty scope
        "avg:x{*}.rollup(median)",  # bad rollup argument
        "avg:x{*}.top(5)",  # unsupported function
        "avg:x",  # no scope
    ],
)
def test_text_datadog_would_reject_is_a_query_error(text: str) -> None:
    with pytest.raises(QueryError, match="Error parsing query"):
        parse_query(text)


def test_several_queries_split_at_top_level_commas() -> None:
    assert split_queries("avg:a{x:1,y:2} by {t},max:b{*}.rollup(max, 5)") == [
        "avg:a{x:1,y:2} by {t}",
        "max:b{*}.rollup(max, 5)",
    ]
    with pytest.raises(QueryError):
        split_queries("avg:a{*},")


def test_head_reads_any_query_that_starts_like_one() -> None:
    head = query_head("sum:trace.rack.request.hits{service:web} by {task_arn}.as_count() / 10")
    assert head is not None
    assert (head.space_agg, head.metric, head.scope) == ("sum", "trace.rack.request.hits", "service:web")
    assert query_head("count:x{*}") is None and query_head("not a query") is None
