"""Issue 14 items 1-3 end to end through the CLI: secrets from the environment never stored, one token
for the run (also with --workers), and the smoke preflight stopping a run the target refuses."""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Any

import pytest
import tomli_w

from tests.conftest import run_cli
from tests.load.auth_target import API_KEY, TOKEN_PREFIX, BearerTarget, runs, token_command

pytestmark = [pytest.mark.slow, pytest.mark.waits]

SENTINELS = (API_KEY, TOKEN_PREFIX)


def write_experiment(tmp: Path, url: str, cmd: str, *, records: int = 400, **stages: Any) -> Path:
    with (tmp / "records.csv").open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["sta3n", "dfn", "ien", "clinic"])
        for i in range(records):
            w.writerow(["442", str(100000 + i), str(5000 + i), "7"])
    exp = {
        "name": "auth-e2e",
        "target": {
            "base_url": url,
            "headers": {"X-Api-Key": "${CAP_TEST_API_KEY}", "Accept": "application/json"},
            "auth": {"command": cmd, "refresh_s": stages.pop("refresh_s", 1000)},
        },
        "workload": {
            "endpoints": [
                {"name": "status", "path": "/sites/{sta3n}/patients/{dfn}"},
                {
                    "name": "checkin",
                    "method": "POST",
                    "path": "/sites/{sta3n}/appointments/{ien}/checkins",
                    "body": '{"dfn": "{dfn}"}',
                    "consumes": True,
                },
            ],
            "flows": [
                {
                    "name": "check-in",
                    "per_hour": 3600,
                    "steps": [{"endpoint": "status", "count": 3}, {"endpoint": "checkin"}],
                }
            ],
            "test_data": {"source": "csv", "path": "records.csv"},
        },
        "stages": {
            "strategy": "linear",
            "start_rps": 20,
            "step_rps": 20,
            "max_rps": 40,
            "stage_seconds": 3,
            "warmup_seconds": 1,
            "max_stages": 2,
            "recovery_timeout_s": 5,
            **stages,
        },
        "guards": {"slo_p95_ms": 2000, "max_error_ratio": 0.05, "min_goodput_ratio": 0.5},
        "metrics": {"source": "none"},
    }
    path = tmp / "exp.toml"
    path.write_text(tomli_w.dumps(exp), encoding="utf-8")
    return path


def scan(folder: Path, *texts: str) -> list[str]:
    """Where any sentinel appears: every file of the run folder and the given outputs."""
    hits = [f"output {i}" for i, t in enumerate(texts) for s in SENTINELS if s in t]
    for f in folder.rglob("*"):
        if f.is_file():
            data = f.read_bytes()
            hits += [f"{f.name}" for s in SENTINELS if s.encode() in data]
    return hits


@pytest.mark.parametrize("workers", [0, 2])
def test_run_with_token_and_env_secrets_stores_neither(tmp_path: Path, workers: int) -> None:
    cmd, count = token_command(tmp_path)
    with BearerTarget() as srv:
        exp = write_experiment(tmp_path, srv.url, cmd, refresh_s=1.5)
        out = tmp_path / "results"
        r = run_cli(
            "search",
            str(exp),
            "--out",
            str(out),
            "--workers",
            str(workers),
            "--no-report",
            env={"CAP_TEST_API_KEY": API_KEY},
        )
    assert r.returncode == 0, r.stderr
    assert srv.status[401] == 0 and srv.status[403] == 0 and srv.status[200] > 150
    assert 2 <= runs(count) <= 8  # first token + refreshes every 1.5 s, all by the master
    [run_dir] = [p for p in out.iterdir() if p.is_dir()]
    manifest = (run_dir / "manifest.json").read_text()
    assert "${CAP_TEST_API_KEY}" in manifest  # stored as written
    assert scan(run_dir, r.stdout, r.stderr) == []
    # the smoke's check-in record is spent: no appointment was checked in twice
    assert len(srv.iens) == len(set(srv.iens))


def test_smoke_preflight_refused_token_is_exit_2_naming_endpoint_and_auth(tmp_path: Path) -> None:
    cmd, _ = token_command(tmp_path)
    with BearerTarget() as srv:
        srv.min_generation = 5  # the token the command prints is refused
        exp = write_experiment(tmp_path, srv.url, cmd)
        out = tmp_path / "results"
        r = run_cli("search", str(exp), "--out", str(out), env={"CAP_TEST_API_KEY": API_KEY})
    assert r.returncode == 2, r.stderr
    assert "smoke preflight failed" in r.stderr and "endpoint 'status'" in r.stderr and "401" in r.stderr
    assert "authentication" in r.stderr
    assert "invalid token '***'" in r.stderr  # the body excerpt, token redacted
    assert scan(tmp_path / "results" if out.exists() else tmp_path / "none", r.stdout, r.stderr) == []
    assert not out.exists() or not any(out.iterdir())  # no run folder: nothing was sent at load


def test_missing_environment_variable_is_exit_2_naming_it(tmp_path: Path) -> None:
    cmd, _ = token_command(tmp_path)
    exp = write_experiment(tmp_path, "http://127.0.0.1:9", cmd)
    env = {k: v for k, v in os.environ.items() if k != "CAP_TEST_API_KEY"}
    r = run_cli("search", str(exp), "--out", str(tmp_path / "r"), env=env)
    assert r.returncode == 2
    assert "CAP_TEST_API_KEY" in r.stderr and "target.headers.X-Api-Key" in r.stderr
    assert "Traceback" not in r.stderr
