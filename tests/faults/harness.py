"""Short searches against a loopback target and the agent-shaped fake Datadog, for the fault matrix.

The search runs as a user runs it (``capacity search FILE --json`` in a subprocess, keys only in the
environment); the target (a gevent WSGI server) and the fake Datadog live in this process, so a
fault is a change made to them while the search runs. Every run is a few stages of a few seconds.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomli_w

from tests.observe.fake_datadog import AgentShape, FakeDatadog, populate_agent

API_KEY = "fault-api-key-5d1e"
APP_KEY = "fault-app-key-93ab"
REPO = Path(__file__).resolve().parents[2]


def experiment(target_url: str, fake_url: str, rates: tuple[float, ...], **changes: Any) -> dict[str, Any]:
    """A linear search over ``rates`` (equal steps) against the target, metrics from the fake."""
    step = rates[1] - rates[0] if len(rates) > 1 else rates[0]
    exp: dict[str, Any] = {
        "name": "fault",
        "target": {"base_url": target_url, "allowed_hosts": ["127.0.0.1"]},
        "workload": {"endpoints": [{"name": "ping", "method": "GET", "path": "/ping"}]},
        "stages": {
            "strategy": "linear",
            "start_rps": rates[0],
            "step_rps": step,
            "max_rps": rates[-1],
            "stage_seconds": 4.0,
            "warmup_seconds": 1.0,
            "recovery_timeout_s": 6.0,
        },
        "guards": {"slo_p95_ms": 500.0},
        "cluster": {"app_tasks": 2, "puma_threads": 5, "cpu_units_per_task": 1024, "mem_mib_per_task": 2048},
        "metrics": {
            "source": "datadog",
            "url": fake_url,
            "cluster": "staging",
            "app_service": "cw-app",
            "sidekiq_service": "cw-sidekiq",
            "poll_deadline_s": 4.0,
            "poll_interval_s": 0.5,
            "catch_up": True,
        },
    }
    for section, values in changes.items():
        exp.setdefault(section, {}).update(values)
    return exp


@dataclass
class SearchRun:
    returncode: int
    summary: dict[str, Any]
    run_dir: Path | None
    stderr: str
    stages_on_disk: int

    @property
    def stages(self) -> list[dict[str, Any]]:
        return list(self.summary.get("stages", []))


def run_search(
    exp: dict[str, Any],
    tmp: Path,
    *,
    env: dict[str, str] | None = None,
    timeout: float = 120,
    extra_args: tuple[str, ...] = (),
) -> SearchRun:
    """``capacity search FILE --json --no-report`` in a fresh interpreter; the summary and the run folder."""
    tmp.mkdir(parents=True, exist_ok=True)
    path = tmp / "fault.toml"
    path.write_text(tomli_w.dumps(exp), encoding="utf-8")
    root = tmp / "results"
    full_env = {**os.environ, "DD_API_KEY": API_KEY, "DD_APP_KEY": APP_KEY, "PYTHONUNBUFFERED": "1", **(env or {})}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "capacity",
            "search",
            str(path),
            "--json",
            "--no-report",
            "--out",
            str(root),
            *extra_args,
        ],
        cwd=REPO,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    try:
        summary = json.loads(proc.stdout) if proc.stdout.strip() else {}
    except json.JSONDecodeError:
        summary = {}
    dirs = [p for p in root.iterdir() if p.is_dir()] if root.is_dir() else []
    run_dir = dirs[0] if dirs else None
    on_disk = len(list((run_dir / "stages").glob("stage-*.json"))) if run_dir else 0
    return SearchRun(proc.returncode, summary, run_dir, proc.stderr, on_disk)


def agent_fake(shape: AgentShape | None = None, *, ahead_s: float = 900.0) -> tuple[FakeDatadog, AgentShape]:
    """A started fake Datadog holding the agent-shaped cluster from 10 min ago to ``ahead_s`` from now
    (future points stay invisible until their time comes)."""
    fake = FakeDatadog(api_key=API_KEY, app_key=APP_KEY).__enter__()
    now = time.time()
    return fake, populate_agent(fake, now - 600, now + ahead_s, shape)
