"""The fake Datadog answers with the sandbox's evaluator: one semantics for contract and sandbox tests."""

from __future__ import annotations

import json
import urllib.request
from typing import Any

from capacity.sandbox.metricstore import MetricStore
from capacity.sandbox.query_eval import query_response
from tests.observe.conftest import API_KEY, APP_KEY
from tests.observe.fake_datadog import FakeDatadog

T0 = 1_700_000_000  # past (late data hides the future), a multiple of 5: buckets start at T0
POINTS = {"task_arn:a": [10.0, 20.0, 30.0, 40.0, 50.0], "task_arn:b": [1.0, 1.0, 1.0, 1.0, 1.0]}


def _get(fake: FakeDatadog, query: str, frm: int, to: int) -> dict[str, Any]:
    url = f"{fake.url}/api/v1/query?" + urllib.parse.urlencode({"query": query, "from": frm, "to": to})
    req = urllib.request.Request(url, headers={"DD-API-KEY": API_KEY, "DD-APPLICATION-KEY": APP_KEY})
    with urllib.request.urlopen(req, timeout=5) as resp:
        return json.loads(resp.read())  # type: ignore[no-any-return]


def _filled(fake: FakeDatadog) -> MetricStore:
    store = MetricStore()
    for tag, values in POINTS.items():
        points = [(T0 + i, v) for i, v in enumerate(values)]
        fake.add("ecs.fargate.cpu.percent", ["svc:app", tag], points)
        fake.add("sidekiq.jobs.count", ["svc:sk", tag], points)
        store.extend("ecs.fargate.cpu.percent", ["svc:app", tag], points)
        store.extend("sidekiq.jobs.count", ["svc:sk", tag], points)
    return store


def test_fake_answers_what_the_sandbox_evaluator_answers(fake: FakeDatadog) -> None:
    store = _filled(fake)
    query = "max:ecs.fargate.cpu.percent{svc:app}.rollup(5),sum:sidekiq.jobs.count{*} by {task_arn}.rollup(5)"
    assert _get(fake, query, T0, T0 + 9) == query_response(store, query, T0, T0 + 9)


def test_a_gauges_default_rollup_is_avg_not_the_space_aggregator(fake: FakeDatadog) -> None:
    """Datadog's rollup defaults to avg: ``max:`` takes the max across series of each series' average."""
    _filled(fake)
    body = _get(fake, "max:ecs.fargate.cpu.percent{svc:app}.rollup(5)", T0, T0 + 4)
    assert body["series"][0]["pointlist"] == [[T0 * 1000.0, 30.0]]  # avg(10..50) = 30 beats b's 1; max would be 50
    assert body["series"][0]["unit"][0]["name"] == "percent"  # the integration's unit, with no unit given


def test_a_counts_default_rollup_is_sum(fake: FakeDatadog) -> None:
    _filled(fake)
    body = _get(fake, "max:sidekiq.jobs.count{*}.rollup(5)", T0, T0 + 4)
    assert body["series"][0]["pointlist"] == [[T0 * 1000.0, 150.0]]  # sum(10..50) against b's 5


def test_lag_hides_late_points_and_nulls_fill_the_grid(fake: FakeDatadog) -> None:
    _filled(fake)
    fake.nulls = True
    body = _get(fake, "avg:ecs.fargate.cpu.percent{task_arn:a}.rollup(5)", T0, T0 + 14)
    assert body["series"][0]["pointlist"] == [
        [T0 * 1000.0, 30.0],
        [(T0 + 5) * 1000.0, None],
        [(T0 + 10) * 1000.0, None],
    ]
    fake.lag_s = {"ecs.": 10**10}  # nothing ingested yet
    assert _get(fake, "avg:ecs.fargate.cpu.percent{*}", T0, T0 + 14)["series"] == []


def test_every_unit_of_the_metadata_has_a_unit_object() -> None:
    from capacity.core.agent_metrics import agent_metrics
    from capacity.sandbox.metricstore import METRICS, metric_info
    from capacity.sandbox.query_eval import UNITS

    assert {m.unit for m in agent_metrics().values() if m.unit} <= set(UNITS)
    assert {i.unit for i in METRICS.values() if i.unit} <= set(UNITS)
    assert metric_info("ecs.fargate.cpu.usage").kind == "rate"  # typed by the metadata, though not published
