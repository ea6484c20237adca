"""The Rails stack (``--stack rails``): a Rails API on a private PostgreSQL, Puma, Sidekiq and Redis.

Checks that it serves the workload's paths from the database (201 then 409 on a repeat check-in,
404 for an unknown appointment, the summary's Sidekiq job writing its row), that it publishes the
postgres integration's and the ActiveRecord pools' metrics, that it leaves no process or folder
behind, and that a search names the ActiveRecord pool when the pool is smaller than the threads.

Where the Debian packages are missing these skip with the ``apt-get install`` line, unless
``CAPACITY_REQUIRE_STACK=1`` (``scripts/test.sh`` sets it where it could install them), when they fail.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
from rich.console import Console

from capacity.plan.experiment import Experiment, load_experiment
from capacity.sandbox import RunningSandbox, SandboxConfig, run_sandbox
from capacity.sandbox.records import synthetic_records
from capacity.sandbox.stack import RAILS_PACKAGES, install_hint, missing_packages
from capacity.search import SearchOptions, run_search
from tests.conftest import REPO
from tests.sandbox.conftest import http, query, wait_for_second
from tests.sandbox.openloop import open_loop_subprocess
from tests.sandbox.test_stack_puma import by_scope, wait_gone

MISSING = missing_packages(RAILS_PACKAGES)
needs_rails = pytest.mark.skipif(
    bool(MISSING) and os.environ.get("CAPACITY_REQUIRE_STACK") != "1",
    reason=install_hint(MISSING, "rails") if MISSING else "",
)
pytestmark = [pytest.mark.slow, needs_rails]
RECORDS = 3000


def rails_config(**changes: Any) -> SandboxConfig:
    base: dict[str, Any] = {
        "stack": "rails",
        "app_tasks": 2,
        "threads": 4,
        "db_pool": 2,
        "service_ms": 20.0,
        "service_dist": "const",
        "cpu_ms": 0.5,
        "sidekiq_tasks": 1,
        "job_ms": 20.0,
        "records": RECORDS,
        "hot_rows": 2,
    }
    return SandboxConfig(**{**base, **changes})


@pytest.fixture(scope="module")
def rails() -> Iterator[RunningSandbox]:
    with run_sandbox(rails_config()) as sb:
        yield sb


def psql(sb: RunningSandbox, sql: str) -> str:
    """A scalar from the stack's own database (its port is a tag of its postgres metrics)."""
    deadline = time.monotonic() + 10
    while True:
        now = int(time.time())
        series = query(sb.base_url, "avg:postgresql.max_connections{*} by {port}", now - 5, now + 1)["series"]
        if series or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    assert series, "no postgres metrics from the collector"
    port = series[0]["scope"].split(":", 1)[1]
    argv = ["psql", "-X", "-A", "-t", "-h", "127.0.0.1", "-p", port, "-U", "postgres", "-d", "capacity", "-c", sql]
    return subprocess.run(argv, capture_output=True, text=True, timeout=10, check=True).stdout.strip()


def test_serves_the_workload_paths_from_the_database(rails: RunningSandbox) -> None:
    rec = synthetic_records(42, RECORDS)[7]
    base = f"/api/v1/vista-sites/{rec.sta3n}"
    assert http(rails.base_url, "POST", f"{base}/appointments/{rec.ien}/checkins", b"{}")[0] == 201
    status, body = http(rails.base_url, "POST", f"{base}/appointments/{rec.ien}/checkins", b"{}")
    assert status == 409 and "already checked in" in body["errors"][0]["detail"]
    assert http(rails.base_url, "POST", f"{base}/appointments/999/checkins", b"{}")[0] == 404
    assert http(rails.base_url, "POST", f"{base}/appointments/{rec.ien}/checkins", b"{nope")[0] == 400
    status, body = http(rails.base_url, "POST", f"{base}/appointments/{rec.ien}/summary", b"{}")
    assert status == 202 and body["data"]["attributes"]["status"] == "queued"
    payload = json.dumps({"patientDfn": rec.dfn, "demographicsConfirmationPayload": {"by": "test"}}).encode()
    headers = {"Content-Type": "application/json"}
    status, body = http(rails.base_url, "POST", f"{base}/patient_demographics_status", payload, headers)
    assert status == 200 and body["data"]["attributes"]["confirmation"] == {"by": "test"}
    status, body = http(rails.base_url, "GET", f"{base}/patient_demographics_status?patientDfn={rec.dfn}")
    assert status == 200 and body["data"]["attributes"]["demographicsNeedsUpdate"] is False
    assert http(rails.base_url, "GET", f"{base}/patient_demographics_status?patientDfn=x")[0] == 400
    assert http(rails.base_url, "PUT", f"{base}/appointments/{rec.ien}/summary", b"{}")[0] == 405
    # the database holds what the requests did: every record, one check-in, the hot row counted it
    assert psql(rails, "SELECT count(*) FROM appointments") == str(RECORDS)
    assert psql(rails, f"SELECT checked_in_at IS NOT NULL FROM appointments WHERE ien = {rec.ien}") == "t"
    assert psql(rails, "SELECT sum(checkins) FROM clinic_counters") == "1"
    deadline = time.monotonic() + 10
    while psql(rails, f"SELECT count(*) FROM summary_results WHERE ien = {rec.ien}") != "1":
        assert time.monotonic() < deadline, "the Sidekiq job wrote no result row"
        time.sleep(0.2)


def test_publishes_postgres_and_activerecord_pool_metrics(rails: RunningSandbox) -> None:
    start = time.time()
    wait_for_second(start + 2)
    end = int(time.time())

    def series(q: str) -> dict[str, list[float]]:
        return by_scope(query(rails.base_url, q, int(start), end))

    pools = series("avg:rails.active_record.pool.size{ecs_container_name:app} by {task_arn}")
    assert len(pools) == 2 and all(v and set(v) == {2.0} for v in pools.values()), pools  # db_pool 2 per task
    assert series("max:rails.active_record.pool.waiting{*} by {task_arn}")
    (maxc,) = series("avg:postgresql.max_connections{db:capacity}").values()
    assert set(maxc) == {100.0}
    (pct,) = series("max:postgresql.percent_usage_connections{db:capacity}").values()
    (conns,) = series("max:postgresql.connections{db:capacity}").values()
    assert 0 < max(pct) < 1 and max(conns) >= 2  # the tasks' connections, as a fraction of max_connections
    assert series("avg:postgresql.commits{db:capacity}")
    assert series("avg:postgresql.waiting_queries{db:capacity}")


def test_starts_and_stops_without_leftovers() -> None:
    with run_sandbox(rails_config(app_tasks=1, hot_rows=0)) as sb:
        assert len(sb.pids) == 1 + 1 + 1 + 1 + 1  # supervisor, postgres, redis, puma, sidekiq
        folder = Path(psutil.Process(sb.pids[2]).cwd())  # Redis runs in the stack's folder (postgres in pgdata)
        assert (folder / "pgdata" / "PG_VERSION").is_file()
        backends = [c.pid for c in psutil.Process(sb.pids[1]).children()]
        assert backends  # postgres' own processes
        pids = [*sb.pids, *backends]
    assert not wait_gone(pids)
    assert not folder.exists()


def test_hot_row_check_ins_queue_on_one_row_lock_and_each_counts_once() -> None:
    """One shared row held for 20 ms of CPU inside each check-in's transaction, 60 check-ins/s for 4 s:
    the row is wanted 1.2 s per second, so check-ins queue on its lock the whole stage (a sampled
    postgresql.waiting_queries sees them every second, not only by luck), and the counter equals the
    201s exactly."""
    with run_sandbox(rails_config(hot_rows=1, cpu_ms=20.0, db_pool=4)) as sb:
        start = time.time()
        run = open_loop_subprocess(sb.base_url, 60.0, 4.0, path="/appointments/1{k:06d}/checkins")
        created = sum(1 for o in run.outcomes if o.status == 201)
        assert created >= 0.95 * len(run.outcomes), {o.status for o in run.outcomes}
        assert psql(sb, "SELECT sum(checkins) FROM clinic_counters") == str(created)
        assert psql(sb, "SELECT count(*) FROM appointments WHERE checked_in_at IS NOT NULL") == str(created)
        wait_for_second(time.time())
        body = query(sb.base_url, "max:postgresql.waiting_queries{db:capacity}", int(start), int(time.time()))
        (waits,) = by_scope(body).values()
        assert sum(w >= 1 for w in waits) >= 3, waits


# ------------------------------------------------------------------------------ a search
def rails_search(tmp_path: Path, sandbox: dict[str, Any], **stages: Any) -> Any:
    base = load_experiment(REPO / "experiments" / "sandbox-rails.toml")
    plan = {"stage_seconds": 6.0, "warmup_seconds": 1.0, "recovery_timeout_s": 20.0, "strategy": "linear", **stages}
    exp: Experiment = base.with_changes(
        sandbox={"service_dist": "const", "cpu_ms": 0.5, **sandbox},
        guards={"slo_p95_ms": 200.0},
        workload={"test_data": {"source": "sandbox", "seed": 42, "records": 20000}},
        stages=plan,
    )
    return run_search(
        exp,
        options=SearchOptions(results_root=tmp_path, json_mode=True, write_report=False),
        console=Console(quiet=True),
    )


def test_a_search_names_the_activerecord_pool_when_it_is_smaller_than_the_threads(tmp_path: Path) -> None:
    """2 tasks x 8 threads but 2 connections each, 40 ms VistA wait: the pool allows ~2 x 2 / 0.045 = 89 req/s,
    the threads ~350; the second stage (130 req/s) fails, and the pool, not the threads, is named."""
    summary = rails_search(
        tmp_path,
        {"app_tasks": 2, "threads": 8, "db_pool": 2, "service_ms": 40.0},
        start_rps=45.0,
        step_rps=85.0,
        max_rps=130.0,
    )
    first, last = summary.stages[0], summary.stages[-1]
    assert first.verdict == "pass", first.reasons
    assert last.verdict == "fail", last.reasons
    assert summary.bottleneck is not None and summary.bottleneck.resource == "db_pool", summary.bottleneck
    assert summary.bottleneck.stage == last.index
    assert (last.metrics.get("db_pool_waiting") or 0) > (first.metrics.get("db_pool_waiting") or 0)
    stored = json.loads((Path(summary.results_dir) / "summary.json").read_text())
    assert (
        stored["bottleneck"]["resource"] == "db_pool"
        and "waiting for an ActiveRecord connection" in (stored["bottleneck"]["evidence"])
    )
