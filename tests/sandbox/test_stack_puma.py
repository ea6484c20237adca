"""The real stack (``--stack puma``): Debian's Redis, Puma and Sidekiq behind the sandbox front.

Checks that it starts and stops without leftovers, that the Datadog-compatible endpoint serves what
the agent would (Puma's control-app stats, the Redis check's queue length, per-container Fargate
CPU and memory with the sidecars), that load above ``app_tasks x threads / service time`` exhausts
the pool and queues requests in Puma's backlog while a slow Sidekiq lets the Redis queue grow, and
that a search with Datadog metrics finds the formula's saturation.

Where the Debian packages are missing these skip with the ``apt-get install`` line, unless
``CAPACITY_REQUIRE_STACK=1`` (``scripts/test.sh`` sets it where it could install them), when they fail.
"""

from __future__ import annotations

import itertools
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
from rich.console import Console

from capacity.plan.experiment import Experiment
from capacity.sandbox import RunningSandbox, SandboxConfig, run_sandbox
from capacity.sandbox.stack import PACKAGES, install_hint, missing_packages
from capacity.sandbox.stack.resp import encode_command, read_reply
from capacity.search import SearchOptions, run_search
from tests.conftest import REPO
from tests.helpers import make_experiment
from tests.sandbox.conftest import query, values, wait_for_second
from tests.sandbox.openloop import open_loop_subprocess

MISSING = missing_packages()
needs_stack = pytest.mark.skipif(
    bool(MISSING) and os.environ.get("CAPACITY_REQUIRE_STACK") != "1",
    reason=install_hint(MISSING) if MISSING else "",
)
FORMULA_RPS = 2 * 4 / 0.050  # app_tasks x threads / service time
SIDECARS = {"datadog-agent", "log-router"}


def stack_config(**changes: Any) -> SandboxConfig:
    base: dict[str, Any] = {
        "stack": "puma",
        "app_tasks": 2,
        "threads": 4,
        "service_ms": 50.0,
        "service_dist": "const",
        "cpu_ms": 0.3,
        "sidekiq_tasks": 1,
        "sidekiq_concurrency": 1,
        "job_ms": 200.0,  # 5 jobs/s: slower than the summaries arriving at 1.3x capacity (~13/s)
    }
    return SandboxConfig(**{**base, **changes})


def alive(pids: list[int] | tuple[int, ...]) -> list[int]:
    """Processes still running (a killed child may linger as a zombie until init reaps it)."""
    out = []
    for pid in pids:
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                out.append(pid)
        except psutil.NoSuchProcess:
            pass
    return out


def wait_gone(pids: list[int] | tuple[int, ...], timeout_s: float = 10.0) -> list[int]:
    deadline = time.monotonic() + timeout_s
    while alive(pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    return alive(pids)


def stack_folder(sb: RunningSandbox) -> Path:
    """The stack's temporary folder: every child runs in it (Redis first)."""
    return Path(psutil.Process(sb.pids[1]).cwd())


def by_scope(body: dict[str, Any]) -> dict[str, list[float]]:
    return {s["scope"]: [v for v in values(s) if v is not None] for s in body["series"]}


def one_series(body: dict[str, Any]) -> list[float]:
    """The values of a query that must answer exactly one series."""
    found = by_scope(body)
    assert len(found) == 1, found
    return next(iter(found.values()))


# --------------------------------------------------------------------------- no stack needed
def test_missing_packages_are_one_line_naming_them_and_exit_2(tmp_path: Path) -> None:
    """With nothing on PATH, ``capacity sandbox --stack puma`` names every package and how to install them."""
    env = {**os.environ, "PATH": str(tmp_path)}
    proc = subprocess.run(
        [sys.executable, "-m", "capacity.cli.app", "sandbox", "--stack", "puma", "--duration", "1"],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    assert "apt-get install -y " + " ".join(PACKAGES) in lines[0]


def test_resp_round_trip() -> None:
    import asyncio

    async def parse(raw: bytes) -> object:
        reader = asyncio.StreamReader()
        reader.feed_data(raw)
        reader.feed_eof()
        return await read_reply(reader)

    assert encode_command("LLEN", "queue:default") == b"*2\r\n$4\r\nLLEN\r\n$13\r\nqueue:default\r\n"
    assert asyncio.run(parse(b":7\r\n")) == 7
    assert asyncio.run(parse(b"$-1\r\n")) is None
    assert asyncio.run(parse(b"*2\r\n+PONG\r\n$3\r\nabc\r\n")) == ["PONG", b"abc"]


# ------------------------------------------------------------------------------ real stack
@pytest.fixture(scope="module")
def stack() -> Iterator[RunningSandbox]:
    with run_sandbox(stack_config()) as sb:
        yield sb


@pytest.mark.slow
@needs_stack
def test_starts_and_stops_without_leftovers() -> None:
    with run_sandbox(stack_config(app_tasks=2, sidekiq_tasks=2)) as sb:
        assert len(sb.pids) == 1 + 1 + 2 + 2  # supervisor, redis, 2 puma, 2 sidekiq
        names = {psutil.Process(p).name() for p in sb.pids[1:]}
        assert any("redis" in n for n in names) and any("puma" in n or "ruby" in n for n in names)
        folder = stack_folder(sb)
        assert folder.is_dir() and folder.name.startswith("capacity-stack-")
        pids = sb.pids
    assert not wait_gone(pids)
    assert not folder.exists()


@pytest.mark.slow
@needs_stack
def test_children_die_with_a_killed_supervisor() -> None:
    with run_sandbox(stack_config(app_tasks=1)) as sb:
        children = sb.pids[1:]
        folder = stack_folder(sb)
        try:
            os.kill(sb.supervisor_pid, signal.SIGKILL)
            assert not wait_gone(children)
        finally:  # a supervisor killed outright cannot remove its temporary folder
            shutil.rmtree(folder, ignore_errors=True)


@pytest.mark.slow
@needs_stack
def test_query_endpoint_serves_the_agents_metrics(stack: RunningSandbox) -> None:
    start = time.time()
    wait_for_second(start + 1)
    end = int(time.time())
    frm = int(start) - 5
    pool = by_scope(query(stack.base_url, "avg:puma.pool_capacity{*} by {task_arn}", frm, end))
    assert len(pool) == 2 and all(v and v[-1] == 4 for v in pool.values()), pool
    threads = one_series(query(stack.base_url, "max:puma.max_threads{ecs_container_name:app}", frm, end))
    assert threads[-1] == 4
    queue = by_scope(query(stack.base_url, "max:redis.key.length{key:queue:default}", frm, end))
    # as the Redis check: no point while the list is empty (Redis deletes it), the length while it is not
    assert list(queue) in ([], ["key:queue:default"]) and all(v > 0 for vs in queue.values() for v in vs if v)
    cpu = by_scope(query(stack.base_url, "avg:ecs.fargate.cpu.percent{*} by {ecs_container_name}", frm, end))
    assert set(cpu) == {f"ecs_container_name:{c}" for c in ("app", "sidekiq", *SIDECARS)}
    for car in SIDECARS:
        assert all(0 < v < 10 for v in cpu[f"ecs_container_name:{car}"])  # small sidecars
    mem = one_series(query(stack.base_url, "avg:ecs.fargate.mem.usage{ecs_container_name:app}", frm, end))
    limit = one_series(query(stack.base_url, "avg:ecs.fargate.mem.limit{ecs_container_name:app}", frm, end))
    assert 0 < mem[-1] < limit[-1] == 512 * 1024 * 1024
    # open-source Sidekiq emits none of the Enterprise metrics
    assert query(stack.base_url, "max:sidekiq.queue.size{*}", frm, end)["series"] == []


@pytest.mark.slow
@needs_stack
def test_agent_interval_is_a_setting() -> None:
    """The collector publishes every ``agent_interval_s`` (the real agent: 15 s), not every second."""
    with run_sandbox(stack_config(app_tasks=1, sidekiq_tasks=0, agent_interval_s=3.0)) as sb:
        start = time.time()
        time.sleep(7.5)
        body = query(sb.base_url, "avg:puma.pool_capacity{*}", int(start) - 3, int(time.time()))
    stamps = [int(p[0] / 1000) for p in body["series"][0]["pointlist"] if p[1] is not None]
    assert len(stamps) >= 2 and {b - a for a, b in itertools.pairwise(stamps)} == {3}, stamps


@pytest.mark.slow
@needs_stack
def test_overload_exhausts_the_pool_fills_the_backlog_and_grows_the_queue(stack: RunningSandbox) -> None:
    # below capacity: free threads about threads x (1 - utilisation), nothing queued
    t0 = time.time()
    half = open_loop_subprocess(stack.base_url, FORMULA_RPS * 0.5, 6.0, first=0)
    assert half.goodput(1.0, 6.0) == pytest.approx(FORMULA_RPS * 0.5, rel=0.05)
    # about 1.3x capacity: goodput held at the formula, the pool at 0, requests in Puma's backlog
    t2 = time.time()
    over = open_loop_subprocess(stack.base_url, FORMULA_RPS * 1.3, 8.0, first=3000)
    t3 = time.time()
    wait_for_second(t3)
    assert abs(over.goodput(3.0, 8.0) - FORMULA_RPS) / FORMULA_RPS <= 0.07, over.goodput(3.0, 8.0)

    def series(q: str, started: float, seconds: float) -> list[float]:
        """Points while the load ran (the client starts within a second; its drain is left out)."""
        return one_series(query(stack.base_url, q, int(started) + 3, int(started + seconds)))

    pool_half = series("avg:puma.pool_capacity{ecs_container_name:app}", t0, 6.0)
    assert sum(pool_half) / len(pool_half) >= 1.0, pool_half
    pool_over = series("avg:puma.pool_capacity{ecs_container_name:app}", t2, 8.0)
    backlog_over = series("max:puma.backlog{ecs_container_name:app}", t2, 8.0)
    assert max(pool_over) <= 0.5 and sum(pool_over) / len(pool_over) <= 0.25, pool_over
    assert max(backlog_over) > 0, backlog_over
    # summaries arrive at ~13 jobs/s, one Sidekiq thread drains 5/s: the Redis list grows
    queue = series("max:redis.key.length{key:queue:default}", t2, 8.0)
    assert queue[-1] >= queue[0] + 10, queue
    latency = series("max:sidekiq.queue.latency{queue:default}", t2, 8.0)
    assert latency[-1] > latency[0], latency
    cpu = series("avg:ecs.fargate.cpu.percent{ecs_container_name:app}", t2, 8.0)
    assert max(cpu) > 0


# ------------------------------------------------------------------------------ a search
APP = "$app_scope,ecs_container_name:app"
PUMA_QUERIES = {
    "cpu_pct": "avg:ecs.fargate.cpu.percent{" + APP + "} by {task_arn}",
    "mem_usage": "avg:ecs.fargate.mem.usage{" + APP + "} by {task_arn}",
    "mem_limit": "avg:ecs.fargate.mem.limit{" + APP + "} by {task_arn}",
    "pool_capacity": "avg:puma.pool_capacity{" + APP + "} by {task_arn}",
    "backlog": "max:puma.backlog{" + APP + "} by {task_arn}",
    "queue_size": "max:redis.key.length{$queue_scope,key:queue:default}",
    "queue_latency_s": "max:sidekiq.queue.latency{$queue_scope} by {queue}",
    "jobs_processed": None,
    "sidekiq_cpu_pct": "avg:ecs.fargate.cpu.percent{$sidekiq_scope,ecs_container_name:sidekiq} by {task_arn}",
}


def puma_search(tmp_path: Path, sandbox: dict[str, Any], guards: dict[str, Any], **stages: Any) -> Any:
    base = make_experiment(builtin=True)
    plan = {"stage_seconds": 5.0, "warmup_seconds": 1.0, "recovery_timeout_s": 20.0, "strategy": "linear", **stages}
    exp: Experiment = base.with_changes(
        sandbox={"stack": "puma", "service_dist": "const", **sandbox},
        guards={"slo_p95_ms": 150.0, "max_cpu_pct": None, **guards},
        metrics={"queries": PUMA_QUERIES, "sidekiq": "oss", "queue_keys": ["queue:default"]},  # empty reads 0
        stages=plan,
    )
    return run_search(
        exp,
        options=SearchOptions(results_root=tmp_path, json_mode=True, write_report=False),
        console=Console(quiet=True),
    )


@pytest.mark.slow
@needs_stack
def test_search_finds_the_formula_and_the_pool_guard_fires(tmp_path: Path) -> None:
    summary = puma_search(
        tmp_path,
        {"app_tasks": 2, "threads": 4, "service_ms": 50.0, "sidekiq_tasks": 1, "sidekiq_concurrency": 10, "job_ms": 50},
        {"min_pool_capacity": 0.5},
        start_rps=FORMULA_RPS * 0.65,  # free threads ~1.4 a task: the pool guard holds
        step_rps=FORMULA_RPS * 0.65,  # then ~1.3x capacity: the pool is exhausted
        max_rps=FORMULA_RPS * 1.3,
    )
    assert summary.saturation_rps is not None
    assert abs(summary.saturation_rps - FORMULA_RPS) / FORMULA_RPS <= 0.07, (summary.saturation_rps, FORMULA_RPS)
    first, last = summary.stages[0], summary.stages[-1]
    for key in ("cpu_pct", "pool_capacity", "backlog_max", "queue_size_max"):
        assert first.metrics.get(key) is not None, (key, first.metrics)
    assert first.verdict == "pass" and first.metrics["pool_capacity"] >= 1.0
    assert len(summary.stages) == 2 and last.verdict == "fail"
    assert "pool" in {b.code for b in last.breaches}, last.reasons


@pytest.mark.slow
@needs_stack
def test_the_queue_guard_fires_when_sidekiq_falls_behind(tmp_path: Path) -> None:
    """One Sidekiq thread at 400 ms drains 2.5 jobs/s: summaries (6.5% of requests) outrun it above ~38 req/s."""
    summary = puma_search(
        tmp_path,
        {"app_tasks": 2, "threads": 4, "service_ms": 50.0, "sidekiq_tasks": 1, "sidekiq_concurrency": 1, "job_ms": 400},
        {"max_queue_growth_per_s": 1.0},
        start_rps=20.0,
        step_rps=60.0,
        max_rps=140.0,
    )
    first, last = summary.stages[0], summary.stages[-1]
    assert first.verdict == "pass", first.reasons
    assert last.verdict == "fail" and last.target_rps == pytest.approx(80.0)
    assert "queue_growth" in {b.code for b in last.breaches}, last.reasons
    assert last.metrics["queue_size_max"] > first.metrics["queue_size_max"]
