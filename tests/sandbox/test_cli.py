"""``capacity sandbox`` as a user runs it: --explain, a short served run, bad input -> one line, exit 2."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator

import pytest

from capacity.core.errors import CapacityError
from capacity.sandbox import SandboxConfig, run_sandbox
from tests.conftest import REPO, Cli, run_cli


@pytest.fixture
def busy_port() -> Iterator[int]:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(1)
    yield s.getsockname()[1]
    s.close()


def test_explain_prints_the_formula_numbers(cli: Cli) -> None:
    code, out, err = cli("sandbox", "--explain", "--app-tasks", "3", "--threads", "5", "--service-ms", "100")
    assert code == 0, err
    assert "150.0 req/s" in out and "3 * 5 / 0.1" in out


def test_explain_json_matches_truth(cli: Cli) -> None:
    code, out, err = cli(
        "sandbox",
        "--explain",
        "--json",
        "--sidekiq-tasks",
        "2",
        "--sidekiq-concurrency",
        "4",
        "--job-ms",
        "200",
    )
    assert code == 0, err
    data = json.loads(out)
    assert data["pool_rps"] == pytest.approx(160.0)
    assert data["queue_jobs_per_s"] == pytest.approx(40.0)
    assert data["queue_bound_rps"] == pytest.approx(40.0 / (588 / 9015))
    assert data["parameters"]["sidekiq_tasks"] == 2


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--threads", "0"], "--threads"),
        (["--service-dist", "gauss"], "--service-dist"),
        (["--error-rate", "2"], "--error-rate"),
        (["--threads", "many"], "--threads"),
        (["--port", "70000"], "--port"),
        (["--service-ms", "40", "--endpoint-ms", "appointment_summary=90"], "--endpoint-ms"),
        (["--endpoint-ms", "appointment_summary"], "--endpoint-ms"),
        (["--require-keys"], "CAPACITY_SANDBOX_KEYS"),
        (["--duration", "0"], "--duration"),
    ],
)
def test_bad_values_are_one_line_and_exit_2(
    cli: Cli, monkeypatch: pytest.MonkeyPatch, args: list[str], needle: str
) -> None:
    monkeypatch.delenv("CAPACITY_SANDBOX_KEYS", raising=False)
    code, _, err = cli("sandbox", "--explain", *args)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0] and "Traceback" not in err


def test_port_in_use_is_one_line_and_exit_2(busy_port: int) -> None:
    r = run_cli("sandbox", "--port", str(busy_port), "--duration", "5")
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == [
        f"capacity: error: sandbox --port {busy_port}: port {busy_port} on 127.0.0.1 is already in use"
    ]


def test_run_sandbox_reports_a_port_in_use(busy_port: int) -> None:
    with pytest.raises(CapacityError, match="already in use"), run_sandbox(SandboxConfig(records=10), port=busy_port):
        pass


def test_served_run_prints_url_answers_and_stops_by_itself() -> None:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "capacity",
            "sandbox",
            "--duration",
            "1.5",
            "--app-tasks",
            "1",
            "--sidekiq-tasks",
            "0",
            "--records",
            "10",
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert first.startswith("sandbox listening on http://127.0.0.1:")
        base = first.split()[3]
        with urllib.request.urlopen(f"{base}/health", timeout=5) as resp:
            assert resp.status == 200
        rest = proc.stdout.read()
        assert "/api/v1/query?from=" in rest
        started = time.monotonic()
        assert proc.wait(timeout=15) == 0
        assert time.monotonic() - started < 10
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
