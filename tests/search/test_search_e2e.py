"""End to end on the sandbox: the search finds the capacity the sandbox's formula says, keeps every
finished stage on disk whatever happens, and fails cleanly before stage 1 on a bad setup."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psutil
import pytest
from rich.console import Console

from capacity.plan.experiment import Experiment
from capacity.sandbox import SandboxConfig, run_sandbox, truth
from capacity.search import SearchOptions, run_search
from capacity.store import load_run
from tests.conftest import REPO, run_cli
from tests.helpers import make_experiment

SUMMARY_KEYS = {
    "run_id",
    "results_dir",
    "experiment",
    "target",
    "saturation_rps",
    "slo_capacity_rps",
    "knee_rps",
    "capacity_interval",
    "stopped_reason",
    "stages",
    "recommendation",
}
STAGE_KEYS = {
    "index",
    "target_rps",
    "offered_rps",
    "achieved_rps",
    "dropped",
    "p50_ms",
    "p95_ms",
    "p99_ms",
    "error_ratio",
    "verdict",
    "reasons",
    "metrics",
}


def fast(exp: Experiment, **stages: Any) -> Experiment:
    """Short stages so an end-to-end search takes tens of seconds."""
    plan = {"stage_seconds": 4.0, "warmup_seconds": 1.0, "recovery_timeout_s": 15.0, **stages}
    return exp.with_changes(stages=plan)


def quiet_search(exp: Experiment, root: Path, **opts: Any) -> Any:
    return run_search(
        exp,
        options=SearchOptions(results_root=root, json_mode=True, write_report=False, **opts),
        console=Console(quiet=True),
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow
@pytest.mark.parametrize(
    ("app_tasks", "threads", "service_ms"),
    [(1, 4, 40.0), (2, 6, 50.0)],  # 100 and 240 req/s by formula
)
def test_saturation_matches_sandbox_formula(tmp_path: Path, app_tasks: int, threads: int, service_ms: float) -> None:
    base = make_experiment(builtin=True)
    sb = {"app_tasks": app_tasks, "threads": threads, "service_ms": service_ms, "service_dist": "const"}
    formula = truth(SandboxConfig.from_settings(base.sandbox.model_copy(update=sb))).pool_rps
    exp = fast(
        base.with_changes(sandbox=sb, guards={"slo_p95_ms": 150.0}, metrics={"events": True}),
        strategy="linear",
        start_rps=round(formula * 0.5, 1),
        step_rps=round(formula * 0.25, 1),
        max_rps=formula * 2,
    )
    summary = quiet_search(exp, tmp_path)
    assert summary.truth is not None and summary.truth["pool_rps"] == pytest.approx(formula)
    assert summary.saturation_rps is not None
    assert abs(summary.saturation_rps - formula) / formula <= 0.05, (summary.saturation_rps, formula)
    verdicts = [s.verdict for s in summary.stages]
    assert verdicts[-1] == "fail" and all(v == "pass" for v in verdicts[:-1])
    assert summary.stopped_reason.startswith("guard:")
    # opt-in Datadog events (run start, each stage, the result) went to the sandbox's events API
    manifest = json.loads((Path(summary.results_dir) / "manifest.json").read_text())
    titles = [e["title"] for e in manifest["datadog_events"]]
    assert titles[0] == "run start" and titles[-1] == "result"
    assert [t for t in titles if t.startswith("stage ")] == [f"stage {s.index}" for s in summary.stages]
    assert all(e["id_str"] for e in manifest["datadog_events"])
    # the stage below capacity held the rate; the last one could not
    below = summary.stages[0]
    assert abs(below.offered_rps - below.target_rps) / below.target_rps < 0.02
    assert abs(below.achieved_rps - below.offered_rps) / below.offered_rps < 0.03


@pytest.mark.slow
def test_default_search_json_contract_and_results_folder(tmp_path: Path) -> None:
    """``capacity search --json`` with no file: the built-in sandbox, summary JSON as the only stdout."""
    proc = run_cli(
        "search",
        "--json",
        "--out",
        str(tmp_path),
        "--stage-seconds",
        "4",
        "--warmup-seconds",
        "1",
        "--start-rps",
        "60",
        timeout=240,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    summary = json.loads(proc.stdout)  # the whole stdout is one JSON document
    assert set(summary) >= SUMMARY_KEYS
    assert summary["experiment"] == "sandbox"
    assert summary["stages"] and all(set(s) >= STAGE_KEYS for s in summary["stages"])
    formula = summary["truth"]["pool_rps"]
    assert abs(summary["saturation_rps"] - formula) / formula <= 0.05
    assert len(summary["capacity_interval"]) == 2
    rec = summary["recommendation"]
    assert rec["app_tasks"] >= 1
    # issue 20's contract: range, Sidekiq tasks, the chain, limits, extrapolation; SLO capacity <= saturation
    assert rec["app_tasks_range"][0] <= rec["app_tasks"] <= rec["app_tasks_range"][1]
    assert rec["sidekiq_tasks"] >= 0 and rec["limits"] == []
    assert all(set(step) >= {"step", "value", "source"} for step in rec["chain"])
    assert rec["chain"][0]["step"] == "demand" and rec["chain"][-2] == {**rec["chain"][-2], "value": rec["app_tasks"]}
    assert rec["extrapolation"]["largest_measured_tasks"] == 2
    assert summary["slo_capacity_rps"] <= summary["saturation_rps"] * (1 + 1e-6)
    # the adaptive search never offered more than its first failing rate
    first_fail = next(i for i, s in enumerate(summary["stages"]) if s["verdict"] == "fail")
    edge = summary["stages"][first_fail]["target_rps"]
    assert all(s["target_rps"] <= edge for s in summary["stages"][first_fail:])
    # server metrics came through the Datadog code path from the sandbox
    assert summary["stages"][0]["metrics"].get("cpu_pct") is not None
    run_dir = Path(summary["results_dir"])
    for name in ("manifest.json", "summary.json", "analysis.json", "report.html", "summary.md", "run.log"):
        assert (run_dir / name).is_file(), name
    run = load_run(run_dir)
    assert len(run.stages) == len(summary["stages"])
    assert set(run.seconds["stage"]) == set(range(len(summary["stages"])))
    assert len(list((run_dir / "stages").glob("stage-*.json"))) == len(summary["stages"])


@pytest.mark.slow
@pytest.mark.waits
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupt_keeps_finished_stages_and_writes_summary(tmp_path: Path, sig: signal.Signals) -> None:
    cmd = [
        sys.executable,
        "-m",
        "capacity",
        "search",
        "--out",
        str(tmp_path),
        "--strategy",
        "linear",
        "--start-rps",
        "20",
        "--step-rps",
        "10",
        "--max-rps",
        "100",
        "--stage-seconds",
        "3",
        "--warmup-seconds",
        "1",
        "--no-report",
    ]
    proc = subprocess.Popen(
        cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, "COLUMNS": "200"}
    )
    me = psutil.Process(proc.pid)
    children: set[int] = set()
    deadline = time.monotonic() + 90
    try:
        while time.monotonic() < deadline:
            children |= {c.pid for c in me.children(recursive=True)}
            if list(tmp_path.glob("*/stages/stage-001.json")):
                break
            time.sleep(0.2)
        else:
            pytest.fail("no second stage within 90 s")
        time.sleep(1.0)  # now inside stage 2
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err[-2000:]
    run_dir = next(tmp_path.iterdir())
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["stopped_reason"] == "interrupted"
    stage_files = sorted(p.name for p in (run_dir / "stages").glob("stage-*.json"))
    assert stage_files[:2] == ["stage-000.json", "stage-001.json"]
    finished = [s for s in summary["stages"] if s["verdict"] != "interrupted"]
    assert [s["index"] for s in finished][:2] == [0, 1]
    assert all(s["verdict"] == "pass" for s in finished)
    assert "Traceback" not in err
    time.sleep(0.5)
    alive = [pid for pid in children if psutil.pid_exists(pid) and psutil.Process(pid).status() != "zombie"]
    assert not alive, f"processes left behind: {alive}"


def test_unreachable_target_fails_before_stage_one(tmp_path: Path) -> None:
    port = free_port()  # nothing listens here
    proc = run_cli(
        "search",
        "--target",
        f"http://127.0.0.1:{port}",
        "--endpoint",
        "GET /x",
        "--metrics",
        "none",
        "--out",
        str(tmp_path),
    )
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "unreachable" in lines[0] and str(port) in lines[0], proc.stderr
    assert proc.stdout == ""
    assert not any(tmp_path.iterdir()), "no run folder for a run that never started"


def test_host_outside_allow_list_is_refused(tmp_path: Path) -> None:
    exp_file = tmp_path / "exp.toml"
    exp_file.write_text(
        'name = "x"\n[target]\nbase_url = "http://127.0.0.1:9"\nallowed_hosts = ["staging.internal"]\n'
        '[[workload.endpoints]]\nname = "a"\npath = "/a"\n[metrics]\nsource = "none"\n'
    )
    proc = run_cli("search", str(exp_file), "--out", str(tmp_path / "out"))
    assert proc.returncode == 2
    assert "allowed_hosts" in proc.stderr and "--allow-host 127.0.0.1" in proc.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_ad_hoc_search_without_a_file(tmp_path: Path) -> None:
    """``--target URL --endpoint ...`` against a target the test started itself."""
    config = SandboxConfig(app_tasks=1, threads=4, service_ms=20.0, service_dist="const")
    with run_sandbox(config) as sb:
        proc = run_cli(
            "search",
            "--target",
            sb.base_url,
            "--endpoint",
            "GET /health",
            "--endpoint",
            "GET /api/v1/vista-sites/500/patient_demographics_status?patientDfn=123456 3",
            "--slo-p95-ms",
            "500",
            "--start-rps",
            "20",
            "--max-rps",
            "40",
            "--stage-seconds",
            "3",
            "--warmup-seconds",
            "1",
            "--metrics",
            "none",
            "--json",
            "--out",
            str(tmp_path),
            timeout=120,
        )
    assert proc.returncode == 0, proc.stderr[-2000:]
    summary = json.loads(proc.stdout)
    assert summary["experiment"] == "ad-hoc"
    assert [s["verdict"] for s in summary["stages"]] == ["pass"] * len(summary["stages"])
    assert summary["stopped_reason"] == "max_rps"
    # all stages passed: saturation was not reached, so it is reported as a lower bound, never invented
    assert summary["estimates"]["saturation_measured"]["reached"] is False


@pytest.mark.slow
def test_generator_bound_stage_is_invalid_not_a_knee(tmp_path: Path) -> None:
    """A generator over its CPU limit makes the stage invalid: the run stops and says to add workers."""
    exp = fast(
        make_experiment(builtin=True).with_changes(guards={"max_generator_cpu_pct": 0.5}, metrics={"source": "none"}),
        strategy="linear",
        start_rps=60,
        step_rps=20,
        max_rps=100,
    )
    summary = quiet_search(exp, tmp_path)
    assert summary.stages[0].verdict == "invalid: generator"
    assert summary.stopped_reason == "generator"
    assert any("add workers" in w for w in summary.warnings)
    assert summary.knee_rps is None and summary.slo_capacity_rps is None


@pytest.mark.slow
def test_search_with_two_local_workers(tmp_path: Path) -> None:
    exp = fast(
        make_experiment(builtin=True).with_changes(metrics={"source": "none"}),
        strategy="linear",
        start_rps=40,
        step_rps=40,
        max_rps=80,
        stage_seconds=4.0,
    )
    before = {c.pid for c in psutil.Process().children(recursive=True)}
    summary = quiet_search(exp, tmp_path, workers=2)
    assert [s.verdict for s in summary.stages] == ["pass", "pass"]
    for s in summary.stages:
        assert abs(s.offered_rps - s.target_rps) / s.target_rps < 0.03
    time.sleep(0.5)
    after = {c.pid for c in psutil.Process().children(recursive=True) if c.status() != "zombie"}
    assert after <= before, f"child processes left: {after - before}"
