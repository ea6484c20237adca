"""The real datadog-api-client, pointed at the sandbox, reads the series with the right values and groups."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from datadog_api_client import ApiClient, Configuration
from datadog_api_client.exceptions import ApiException, ForbiddenException
from datadog_api_client.v1.api.metrics_api import MetricsApi

from capacity.sandbox import RunningSandbox, SandboxConfig, run_sandbox
from capacity.sandbox.records import synthetic_records
from tests.sandbox.conftest import http, wait_for_second

KEYS = ("test-api-key", "test-app-key")  # dummies for the sandbox, not credentials
CFG = SandboxConfig(
    app_tasks=2,
    threads=3,
    service_ms=5,
    service_dist="const",
    cpu_ms=0.1,
    sidekiq_tasks=1,
    mem_limit_mb=300,
    records=100,
    require_keys=KEYS,
)
N_CHECKINS = 7


@pytest.fixture(scope="module")
def sb() -> Iterator[tuple[RunningSandbox, int, int]]:
    with run_sandbox(CFG) as running:
        start = int(time.time())
        for rec in synthetic_records(CFG.seed, CFG.records)[:N_CHECKINS]:
            status, _ = http(running.base_url, "POST", f"/appointments/{rec.ien}/checkins", b"{}")
            assert status == 201
        time.sleep(1.0)
        wait_for_second(time.time())
        yield running, start - 1, int(time.time()) - 1


def _api(base_url: str, keys: tuple[str, str]) -> ApiClient:
    conf = Configuration(host=base_url)
    conf.api_key["apiKeyAuth"], conf.api_key["appKeyAuth"] = keys
    conf.retries = 0
    return ApiClient(conf)


def test_query_metrics_returns_values_and_groups(sb: tuple[RunningSandbox, int, int]) -> None:
    running, start, end = sb
    with _api(running.base_url, KEYS) as client:
        resp = MetricsApi(client).query_metrics(
            _from=start, to=end, query="avg:puma.max_threads{ecs_cluster_name:sandbox} by {task_arn}"
        )
        assert resp.status == "ok" and resp.from_date == start * 1000 and resp.to_date == end * 1000
        assert len(resp.series) == 2  # one per app task
        arns = {s.tag_set[0] for s in resp.series}
        assert all(a.startswith("task_arn:arn:aws:ecs:") for a in arns) and len(arns) == 2
        for s in resp.series:
            assert s.interval == 1 and s.length == len(s.pointlist) >= 2
            assert all(p.value[1] == 3.0 for p in s.pointlist)
            assert all(start * 1000 <= p.value[0] <= end * 1000 for p in s.pointlist)

        resp = MetricsApi(client).query_metrics(
            _from=start,
            to=end,
            query="sum:puma.max_threads{*} by {ecs_service}, avg:ecs.fargate.mem.limit{*} by {ecs_service}",
        )
        by_query = {(s.query_index, tuple(s.tag_set)): s for s in resp.series}
        app_threads = by_query[(0, ("ecs_service:clinician-workflow-app",))]
        assert {p.value[1] for p in app_threads.pointlist} == {6.0}  # 2 tasks x 3 threads
        limits = {k[1][0]: {p.value[1] for p in s.pointlist} for k, s in by_query.items() if k[0] == 1}
        assert limits == {
            "ecs_service:clinician-workflow-app": {300 * 2**20},
            "ecs_service:clinician-workflow-sidekiq": {300 * 2**20},
        }

        resp = MetricsApi(client).query_metrics(
            _from=start,
            to=end,
            query="sum:trace.rack.request.hits{resource_name:appointment_checkin}.rollup(sum, 3600)",
        )
        assert sum(p.value[1] for s in resp.series for p in s.pointlist) == N_CHECKINS


def test_wrong_keys_get_datadogs_403(sb: tuple[RunningSandbox, int, int]) -> None:
    running, start, end = sb
    with _api(running.base_url, ("test-api-key", "wrong")) as client, pytest.raises(ForbiddenException) as exc:
        MetricsApi(client).query_metrics(_from=start, to=end, query="avg:puma.backlog{*}")
    assert exc.value.status == 403 and "Forbidden" in str(exc.value.body)


def test_bad_query_is_a_400_not_a_crash(sb: tuple[RunningSandbox, int, int]) -> None:
    running, start, end = sb
    with _api(running.base_url, KEYS) as client, pytest.raises(ApiException) as exc:
        MetricsApi(client).query_metrics(_from=start, to=end, query="avg:puma.backlog")
    assert exc.value.status == 400 and "Error parsing query" in str(exc.value.body)
