"""Query templates -> concrete Datadog queries: scopes, tag names, rollups, presets, hosts."""

from __future__ import annotations

import pytest

from capacity.core.errors import CapacityError
from capacity.observe.presets import cloudwatch_queries
from capacity.observe.queries import api_host, is_late, resolve_queries, with_rollup
from capacity.observe.scopes import scope
from capacity.observe.source import resolve_host
from tests.observe.conftest import make_exp


def test_scope_expansion_uses_configured_tag_names() -> None:
    exp = make_exp(
        "http://127.0.0.1:9", service_tag="ecs_service_name", cluster_tag="cluster", extra_scope="env:staging"
    )
    q = resolve_queries(exp.metrics)
    assert q["cpu_pct"] == (
        "sum:ecs.fargate.cpu.percent{cluster:staging,ecs_service_name:cw-app,env:staging} by {task_arn}.rollup(avg, 5)"
    )
    assert q["queue_size"].startswith("max:sidekiq.queue.size{cluster:staging,ecs_service_name:cw-sidekiq,env:staging}")
    assert q["backlog"].endswith(".rollup(max, 5)") and q["jobs_processed"].endswith(".rollup(sum, 5)")


def test_empty_scope_is_star_and_none_skips_a_metric() -> None:
    exp = make_exp(
        "http://127.0.0.1:9",
        cluster="",
        app_service="",
        sidekiq_service="",
        queries={"backlog": None, "extra": {"hits": "sum:trace.rack.request.hits{$app_scope}.as_count()"}},
    )
    q = resolve_queries(exp.metrics)
    assert q["cpu_pct"].startswith("sum:ecs.fargate.cpu.percent{*} by")
    assert "backlog" not in q
    assert q["hits"] == "sum:trace.rack.request.hits{*}.as_count().rollup(sum, 5)"
    assert scope("", " a:b ,", "c:d") == "a:b,c:d"


def test_own_rollup_is_kept_and_unknown_placeholder_names_the_query() -> None:
    assert with_rollup("avg:x{*}.rollup(max, 60)", 10) == "avg:x{*}.rollup(max, 60)"
    exp = make_exp("http://127.0.0.1:9", queries={"cpu_pct": "avg:x{$app_scop}"})
    with pytest.raises(CapacityError, match=r"metrics\.queries\.cpu_pct: unknown placeholder 'app_scop'"):
        resolve_queries(exp.metrics)
    exp = make_exp("http://127.0.0.1:9", queries={"extra": {"bad": "not a query"}})
    with pytest.raises(CapacityError, match=r"metrics\.queries\.bad: 'not a query' is not a Datadog query"):
        resolve_queries(exp.metrics)


def test_cloudwatch_preset() -> None:
    exp = make_exp("http://127.0.0.1:9")
    cw = cloudwatch_queries(exp.metrics)
    assert cw.cpu_pct == "avg:aws.ecs.service.cpuutilization{clustername:staging,servicename:cw-app}"
    assert cw.mem_usage is None and cw.mem_limit is None
    assert cw.extra["mem_pct"] == "avg:aws.ecs.service.memory_utilization{clustername:staging,servicename:cw-app}"
    assert cw.extra["running_tasks"].startswith("avg:aws.ecs.service.running{")
    assert cw.pool_capacity == exp.metrics.queries.pool_capacity  # agent metrics stay
    assert is_late(cw.cpu_pct) and not is_late(exp.metrics.queries.backlog or "")


def test_hosts_sites_and_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    assert api_host("ddog-gov.com") == "https://api.ddog-gov.com"
    assert api_host("app.datadoghq.eu") == "https://api.datadoghq.eu"
    with pytest.raises(CapacityError, match="not a Datadog site"):
        api_host("https://ddog-gov.com/")
    exp = make_exp("", site="ddog-gov.com").with_changes(metrics={"url": None})
    monkeypatch.delenv("CAPACITY_DATADOG_URL", raising=False)
    monkeypatch.delenv("DD_SITE", raising=False)
    assert resolve_host(exp) == "https://api.ddog-gov.com"
    monkeypatch.setenv("DD_SITE", "us5.datadoghq.com")
    assert resolve_host(exp) == "https://api.us5.datadoghq.com"
    monkeypatch.setenv("CAPACITY_DATADOG_URL", "http://127.0.0.1:8126/")
    assert resolve_host(exp) == "http://127.0.0.1:8126"
    assert resolve_host(exp, "http://127.0.0.1:1") == "http://127.0.0.1:1"
    monkeypatch.setenv("CAPACITY_DATADOG_URL", "ftp://x")
    with pytest.raises(CapacityError, match="CAPACITY_DATADOG_URL"):
        resolve_host(exp)


def test_cli_queries_json_shows_expanded_queries(repo, cli) -> None:  # type: ignore[no-untyped-def]
    import json

    code, out, _ = cli("metrics", "queries", str(repo / "experiments" / "clinician-workflow-staging.toml"), "--json")
    assert code == 0
    q = json.loads(out)
    assert q["cpu_pct"].startswith("sum:ecs.fargate.cpu.percent{ecs_cluster_name:clinician-workflow-staging,")
    assert q["cpu_pct"].endswith(".rollup(avg, 20)")
    code, _, err = cli("metrics", "queries", str(repo / "nope.toml"))
    assert code == 2 and "no such experiment file" in err
