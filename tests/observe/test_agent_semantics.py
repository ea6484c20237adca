"""The agent's own semantics (issue 21): page cache, absent limits, per-check intervals, Sidekiq's
documented names, empty OSS queues and collapsed per-task groups, against the agent-shaped fake."""

from __future__ import annotations

import pytest

from capacity.judge.server_guards import blind_queries
from capacity.observe import build_source
from capacity.observe.agent_checks import CARDINALITY_SETTING, collapsed_groups, tasks_from_cpu
from capacity.observe.catalog import agent_metrics, describe
from capacity.observe.queries import metric_name, query_rollups, resolve_queries
from capacity.plan.experiment import Experiment, MetricQueries
from capacity.search.scale_control import tasks_reporting
from tests.observe.conftest import API_KEY, APP_KEY, make_exp, past_window
from tests.observe.fake_datadog import AgentShape, FakeDatadog, populate_agent

MIB = 2**20


def agent_exp(url: str, **metrics: object) -> Experiment:
    """The defaults as shipped (no per-second intervals, no custom queue query), cluster tasks of 2048 MiB."""
    exp = make_exp(url, **metrics)
    m = exp.metrics.model_copy(update={"intervals": {}, "queries": MetricQueries(), "rollup_seconds": 10})
    if metrics.get("sidekiq") == "oss":
        m = m.model_copy(update={"sidekiq": "oss", "queue_keys": list(metrics.get("queue_keys", []))})  # type: ignore[arg-type]
    return exp.model_copy(update={"metrics": m, "cluster": exp.cluster.model_copy(update={"mem_mib_per_task": 2048})})


def fetch(fake: FakeDatadog, exp: Experiment, shape: AgentShape, seconds: int = 60) -> object:
    w = past_window(seconds=seconds, ago=90)
    populate_agent(fake, w.start_s - 120, w.end_s + 60, shape)
    src = build_source(exp, api_key=API_KEY, app_key=APP_KEY)
    assert src is not None
    return src.fetch_stage(w)


def test_every_default_query_reads_an_agent_metric_except_the_marked_custom_latency() -> None:
    known = agent_metrics()
    custom = [
        n for n, q in resolve_queries(make_exp("http://127.0.0.1:9").metrics).items() if metric_name(q) not in known
    ]
    assert custom == ["queue_size", "queue_latency_s"]  # the test's per-queue size, and the latency
    shipped = MetricQueries()
    for name in ("cpu_pct", "mem_usage", "mem_cache", "mem_limit", "pool_capacity", "backlog", "queue_size"):
        assert metric_name(str(getattr(shipped, name))) in known, name
    assert describe("sidekiq.queue.latency").startswith("custom")
    assert describe("ecs.fargate.mem.cache") == "ecs_fargate gauge, byte"


def test_intervals_per_check_ecs_fargate_every_20_s() -> None:
    rollups = query_rollups(agent_exp("http://127.0.0.1:9").metrics)
    assert rollups["cpu_pct"] == rollups["mem_usage"] == 20
    assert rollups["pool_capacity"] == rollups["backlog"] == 15
    assert rollups["queue_size"] == 30  # Sidekiq Enterprise


def test_memory_is_usage_minus_page_cache_against_the_tasks_size(fake: FakeDatadog) -> None:
    """1000 MiB used, 40% page cache, no container limit: 600 MiB of a 2048 MiB task = 29.3%."""
    exp = agent_exp(fake.url)
    sm = fetch(fake, exp, AgentShape(mem_usage_mib=1000.0, cache_share=0.4))
    a = sm.aggregates  # type: ignore[attr-defined]
    assert a["mem_mb_max"] == pytest.approx(600.0)
    assert a["mem_usage_mb_max"] == pytest.approx(1000.0) and a["mem_cache_mb_max"] == pytest.approx(400.0)
    assert a["mem_pct"] == pytest.approx(600.0 / 2048 * 100)
    assert "mem_limit" not in sm.missing  # type: ignore[attr-defined]
    assert any("from [cluster] mem_mib_per_task" in w for w in sm.warnings)  # type: ignore[attr-defined]
    blind = blind_queries(exp.guards, sm.completeness, sm.missing)  # type: ignore[attr-defined]
    assert "mem_usage" not in blind and "mem_limit" not in blind


def test_a_containers_own_limit_wins_over_the_tasks_size(fake: FakeDatadog) -> None:
    sm = fetch(fake, agent_exp(fake.url), AgentShape(mem_usage_mib=1000.0, cache_share=0.4, container_limit=True))
    assert sm.aggregates["mem_pct"] == pytest.approx(600.0 / 2048 * 100)  # type: ignore[attr-defined]
    assert not any("mem_mib_per_task" in w for w in sm.warnings)  # type: ignore[attr-defined]


def test_collapsed_groups_warn_naming_the_agent_setting_and_tasks_come_from_cpu(fake: FakeDatadog) -> None:
    sm = fetch(fake, agent_exp(fake.url), AgentShape(tasks=3, cardinality="low"))
    frame = sm.frame  # type: ignore[attr-defined]
    assert tasks_from_cpu(frame) == 3 and tasks_reporting(frame) == 3
    (warning,) = [w for w in sm.warnings if "collapsed" in w]  # type: ignore[attr-defined]
    assert CARDINALITY_SETTING in warning and "3 tasks report CPU" in warning and "pool_capacity 1" in warning
    assert collapsed_groups(frame) == warning


def test_orchestrator_cardinality_keeps_one_group_per_task(fake: FakeDatadog) -> None:
    sm = fetch(fake, agent_exp(fake.url), AgentShape(tasks=3, cardinality="orchestrator"))
    assert collapsed_groups(sm.frame) is None  # type: ignore[attr-defined]
    assert sm.frame.loc[sm.frame["metric"] == "pool_capacity", "group"].nunique() == 3  # type: ignore[attr-defined]


def test_enterprise_queue_is_the_documented_total(fake: FakeDatadog) -> None:
    sm = fetch(fake, agent_exp(fake.url), AgentShape(queue_depth=10.0), seconds=120)
    assert sm.aggregates["queue_size_max"] == pytest.approx(10.0)  # type: ignore[attr-defined]
    assert sm.aggregates["queue_growth_per_s"] == pytest.approx(0.0, abs=1e-9)  # type: ignore[attr-defined]


def test_oss_empty_queue_reads_0_once_the_keys_are_listed(fake: FakeDatadog) -> None:
    listed = fetch(
        fake,
        agent_exp(fake.url, sidekiq="oss", queue_keys=["queue:default"]),
        AgentShape(queue_depth=0.0, sidekiq="oss"),
    )
    assert listed.aggregates["queue_size_max"] == 0.0 and "queue_size" not in listed.missing  # type: ignore[attr-defined]
    assert listed.completeness["queue_size"] == 1.0  # type: ignore[attr-defined]
    unlisted = fetch(fake, agent_exp(fake.url, sidekiq="oss"), AgentShape(queue_depth=0.0, sidekiq="oss"))
    assert "queue_size" in unlisted.missing and "queue_size_max" not in unlisted.aggregates  # type: ignore[attr-defined]


def test_an_ungrouped_oss_queue_query_zero_fills_its_one_series() -> None:
    from capacity.observe.agent_checks import agent_semantics

    exp = agent_exp("http://127.0.0.1:9", sidekiq="oss", queue_keys=["queue:default", "queue:mailers"])
    grouped = agent_semantics(exp, resolve_queries(exp.metrics))
    assert grouped.zero_when_absent == {"queue_size": ("key:queue:default", "key:queue:mailers")}
    one = agent_semantics(exp, {"queue_size": "max:redis.key.length{key:queue:default}"})
    assert one.zero_when_absent == {"queue_size": ("*",)}
