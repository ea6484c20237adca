"""The stand-in's HTTP contract: routes, test data (404/409), malformed bodies, faults."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from capacity.sandbox import RunningSandbox, SandboxConfig, run_sandbox
from capacity.sandbox.records import synthetic_records
from tests.sandbox.conftest import http, query, values, wait_for_second

CFG = SandboxConfig(
    app_tasks=2,
    threads=4,
    service_ms=5,
    service_dist="const",
    cpu_ms=0.1,
    sidekiq_tasks=1,
    job_ms=5,
    seed=7,
    records=200,
)


@pytest.fixture(scope="module")
def sb() -> Iterator[RunningSandbox]:
    with run_sandbox(CFG) as running:
        yield running


def test_health_and_demographics_round_trip(sb: RunningSandbox) -> None:
    assert http(sb.base_url, "GET", "/health")[0] == 200
    path = "/api/v1/vista-sites/442/patient_demographics_status"
    status, body = http(sb.base_url, "GET", f"{path}?patientDfn=987654")
    assert status == 200 and body["data"]["attributes"]["demographicsNeedsUpdate"] is True
    status, body = http(
        sb.base_url, "POST", path, b'{"patientDfn": "987654", "demographicsConfirmationPayload": {"ok": true}}'
    )
    assert status == 200 and body["data"]["attributes"]["confirmation"] == {"ok": True}
    status, body = http(sb.base_url, "GET", f"{path}?patientDfn=987654")
    assert body["data"]["attributes"]["demographicsNeedsUpdate"] is False
    assert http(sb.base_url, "POST", path, b'{"patientDfn": 12, "demographicsConfirmationPayload": {}}')[0] == 200


@pytest.mark.parametrize(
    ("method", "path", "body", "code"),
    [
        ("POST", "/api/v1/vista-sites/442/patient_demographics_status", b"{not json", 400),
        ("POST", "/api/v1/vista-sites/442/patient_demographics_status", b"", 400),
        ("POST", "/api/v1/vista-sites/442/patient_demographics_status", b"[1, 2]", 400),
        ("POST", "/api/v1/vista-sites/442/patient_demographics_status", b'{"patientDfn": "12a"}', 422),
        (
            "POST",
            "/api/v1/vista-sites/442/patient_demographics_status",
            b'{"patientDfn": "12", "demographicsConfirmationPayload": "x"}',
            422,
        ),
        ("GET", "/api/v1/vista-sites/442/patient_demographics_status", None, 400),
        ("GET", "/api/v1/vista-sites/442/patient_demographics_status?patientDfn=abc", None, 400),
        ("POST", "/appointments/1/summary", b"{oops", 400),
        ("GET", "/no/such/route", None, 404),
        ("PUT", "/appointments/1/checkins", b"{}", 405),
    ],
)
def test_bad_requests_get_json_errors(
    sb: RunningSandbox, method: str, path: str, body: bytes | None, code: int
) -> None:
    status, payload = http(sb.base_url, method, path, body)
    assert status == code
    assert isinstance(payload, dict) and payload["errors"][0]["status"] == str(code)


def test_checkins_address_the_shared_synthetic_appointments(sb: RunningSandbox) -> None:
    rec = synthetic_records(7, 200)[5]
    path = f"/api/v1/vista-sites/{rec.sta3n}/appointments/{rec.ien}/checkins"
    status, body = http(sb.base_url, "POST", path, b"{}")
    assert status == 201 and body["data"]["attributes"]["clinic"] == rec.clinic
    assert http(sb.base_url, "POST", path, b"{}")[0] == 409  # second check-in, maybe on the other task
    assert http(sb.base_url, "POST", f"/appointments/{rec.ien}/checkins", b"")[0] == 409
    unknown = str(1_000_000 + 200)  # one past the last record
    assert http(sb.base_url, "POST", f"/appointments/{unknown}/checkins", b"{}")[0] == 404
    assert http(sb.base_url, "POST", f"/appointments/{unknown}/summary", b"{}")[0] == 404


def test_summary_enqueues_a_job_that_the_workers_drain(sb: RunningSandbox) -> None:
    rec = synthetic_records(7, 200)[9]
    started = time.time()
    for _ in range(6):
        status, body = http(sb.base_url, "POST", f"/appointments/{rec.ien}/summary", b"{}")
        assert status == 202 and body["data"]["attributes"]["status"] == "queued"
    wait_for_second(time.time())
    r = query(
        sb.base_url, "sum:sidekiq.jobs.enqueued{queue:default}.rollup(sum, 60)", int(started) - 1, int(time.time())
    )
    assert sum(values(r["series"][0])) == 6
    r = query(sb.base_url, "sum:sidekiq.jobs.count{queue:default}.rollup(sum, 60)", int(started) - 1, int(time.time()))
    assert sum(values(r["series"][0])) == 6


@pytest.mark.slow  # real requests in real time
def test_error_rate_and_memory_growth_faults() -> None:
    cfg = SandboxConfig(
        app_tasks=1,
        threads=4,
        service_ms=2,
        service_dist="const",
        cpu_ms=0.1,
        sidekiq_tasks=0,
        error_rate=0.3,
        mem_growth_kb=512,
        mem_limit_mb=1024,
        records=10,
    )
    with run_sandbox(cfg) as sb:
        wait_for_second(time.time())
        t_start = int(time.time())
        statuses = [
            http(sb.base_url, "GET", "/api/v1/vista-sites/442/patient_demographics_status?patientDfn=1")[0]
            for _ in range(200)
        ]
        assert set(statuses) <= {200, 500}
        assert 0.18 <= statuses.count(500) / 200 <= 0.42
        wait_for_second(time.time())
        mem = query(
            sb.base_url, "max:ecs.fargate.mem.usage{ecs_service:clinician-workflow-app}", t_start - 2, int(time.time())
        )["series"][0]
        grown = values(mem)[-1] - values(mem)[0]
        assert grown >= 200 * 512 * 1024 * 0.8  # 100 MiB leaked, nearly all resident
        limit = query(sb.base_url, "max:ecs.fargate.mem.limit{*}", t_start - 2, int(time.time()))["series"][0]
        assert values(limit)[-1] == 1024 * 2**20  # the agent's own names only: no ecs.fargate.mem.percent
        cache = query(sb.base_url, "max:ecs.fargate.mem.cache{*}", t_start - 2, int(time.time()))["series"][0]
        assert 0 <= values(cache)[-1] <= values(mem)[-1]  # page cache is part of usage
