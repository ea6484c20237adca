"""``capacity scale`` end to end on moto's server and the scaling sandbox acting as the ECS service.

The sandbox follows the service's desired count (starting and stopping app task processes) and its
capacity is the USL by formula: X(N) = 100 N / (1 + 0.25 (N - 1) + 0.08 N (N - 1)). Stages are 4 s so
a three-size series takes about a minute.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import tomli_w
from rich.console import Console

from capacity import notebook
from capacity.cluster import EcsService
from capacity.plan.experiment import Experiment
from capacity.sandbox import RunningSandbox, SandboxConfig, run_sandbox, truth
from capacity.search import SearchOptions
from capacity.search.scale import ScaleOptions, run_scale
from capacity.search.scale_control import EcsControl
from capacity.size.curve import curve_tasks
from capacity.store import load_run
from tests.conftest import REPO, run_cli
from tests.helpers import make_experiment
from tests.scale.conftest import CLUSTER, NOT_SUSPENDED, SERVICE, Aws

pytestmark = pytest.mark.slow

SIGMA, KAPPA = 0.25, 0.08
SANDBOX = {
    "app_tasks": 1,
    "threads": 4,
    "service_ms": 40.0,
    "service_dist": "const",
    "cpu_ms": 0.3,
    "contention_sigma": SIGMA,
    "crosstalk_kappa": KAPPA,
    "sidekiq_tasks": 1,
    "sidekiq_concurrency": 10,
    "job_ms": 50.0,
}
NEED_RPS = 145.0
"""Production's need (the peak, no throughput headroom): the line from 1 task says 2 tasks, the truth's curve 3."""


@pytest.fixture
def sandbox(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> Iterator[RunningSandbox]:
    monkeypatch.setenv("DD_API_KEY", "sandbox-api-key")
    monkeypatch.setenv("DD_APP_KEY", "sandbox-app-key")
    cfg = SandboxConfig(**SANDBOX, seed=42, records=20_000, follow_ecs=f"{CLUSTER}/{SERVICE}", ecs_poll_s=0.3)
    with run_sandbox(cfg) as sb:
        yield sb


def experiment(sb: RunningSandbox) -> Experiment:
    base = make_experiment(builtin=True)
    # one long-lived target serves every size: no endpoint that uses up its records (check-ins)
    endpoints = [e.model_dump(mode="json", exclude_none=True) for e in base.workload.endpoints if not e.consumes]
    return base.with_changes(
        target={"base_url": sb.base_url},
        workload={"endpoints": endpoints},
        sandbox=SANDBOX,
        metrics={"url": sb.base_url},
        cluster={"app_tasks": 1, "ecs_cluster": CLUSTER, "ecs_service": SERVICE, "region": "us-gov-west-1"},
        stages={
            "strategy": "adaptive",  # bisects to 2%: X(N) is each size's SLO capacity, not its best goodput
            "resolution": 0.02,
            "max_stages": 12,
            "start_rps": 80.0,
            "growth": 1.3,
            "max_rps": 400.0,
            "stage_seconds": 4.0,
            "warmup_seconds": 1.0,
            "recovery_timeout_s": 10.0,
        },
        guards={"slo_p95_ms": 200.0},
        production={
            "peak_rpm": {"demographics_status": NEED_RPS * 60},
            "growth": 1.0,
            "throughput_headroom": 0.0,
            "zones": 1,
            "n_plus_one": False,
            "min_tasks": 1,
        },
    )


def control() -> EcsControl:
    return EcsControl(EcsService(CLUSTER, SERVICE), steady_timeout_s=30.0, poll_s=0.5)


def test_three_sizes_recover_the_sandbox_usl_and_size_production_off_the_curve(
    aws: Aws, sandbox: RunningSandbox, tmp_path: Path
) -> None:
    exp = experiment(sandbox)
    search = SearchOptions(results_root=tmp_path, json_mode=True, write_report=False)
    options = ScaleOptions(sizes=[1, 2, 4], search=search, confirm_timeout_s=20.0)
    started = time.monotonic()
    out = run_scale(exp, options, console=Console(quiet=True), control=control())
    elapsed = time.monotonic() - started
    data = out.to_json()
    assert out.stopped_reason == "done", data["warnings"]
    assert [s["app_tasks"] for s in data["sizes"]] == [1, 2, 4]
    assert all(
        set(s) >= {"app_tasks", "saturation_rps", "slo_capacity_rps", "interval", "run_id"} for s in data["sizes"]
    )
    # the fit comes within 10% of the sandbox's truth
    t = truth(SandboxConfig(**SANDBOX))
    fit = out.fit
    assert fit is not None and fit.model == "usl"
    assert fit.sigma == pytest.approx(SIGMA, rel=0.10), data["sizes"]
    assert fit.kappa == pytest.approx(KAPPA, rel=0.10), data["sizes"]
    assert fit.lam == pytest.approx(t.lambda_rps, rel=0.10)
    assert set(data["fit"]) >= {"model", "sigma", "kappa", "lambda", "peak_tasks", "intervals"}
    # production's task count off the curve is the truth's answer, beside the line's
    production = exp.production
    _, truth_answer, _ = curve_tasks(t.rps_at, t.usl()["peak_tasks"], NEED_RPS, production)
    rec = data["recommendation"]
    assert rec["app_tasks_curve"] == truth_answer == 3
    assert rec["app_tasks_linear"] == 2 and rec["binding"] == "curve" and rec["app_tasks"] == 3
    lo, hi = rec["app_tasks_range"]
    assert lo <= 3 <= hi
    assert rec["chain"][-1]["step"] == "binding rule (line or curve)" and rec["chain"][-1]["value"] == 3
    assert rec["extrapolation"]["largest_measured_tasks"] == 4
    assert "exact and uncheckable" in data["fit_check"] and data["leave_one_out"] == []
    # the cluster is as it was: desired count and autoscaling
    assert aws.desired() == 1 and aws.suspended() == NOT_SUSPENDED
    # stored: one run folder per size (each run saw its size's tasks) and the scaling summary
    series = Path(data["path"])
    assert json.loads((series / "scaling.json").read_text())["fit"]["model"] == "usl"
    assert (series / "scaling.png").stat().st_size > 1000
    for s in data["sizes"]:
        run = load_run(series / s["run_id"])
        assert run.manifest["experiment"]["cluster"]["app_tasks"] == s["app_tasks"]
    listed = run_cli("results", "list", str(tmp_path))
    assert listed.returncode == 0 and out.series_id in listed.stdout and "curve 3 / linear 2" in listed.stdout
    loaded = notebook.load_scaling(series)
    assert list(loaded.sizes["app_tasks"]) == [1, 2, 4] and loaded.recommendation["app_tasks_curve"] == 3
    print(f"three-size scale run: {elapsed:.0f} s")


def test_a_count_that_drifts_during_a_stage_invalidates_it(aws: Aws, sandbox: RunningSandbox, tmp_path: Path) -> None:
    exp = experiment(sandbox).with_changes(stages={"strategy": "linear", "step_rps": 20.0, "max_stages": 4})
    search = SearchOptions(results_root=tmp_path, json_mode=True, write_report=False)
    options = ScaleOptions(sizes=[2], search=search, series_id="drift", confirm_timeout_s=20.0)

    def someone_scales_out() -> None:  # an operator or a forgotten scaling policy, once the search has begun
        deadline = time.monotonic() + 60
        while not (tmp_path / "drift" / "drift-n2" / "manifest.json").exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        aws.ecs().update_service(cluster=CLUSTER, service=SERVICE, desiredCount=3)

    meddler = threading.Thread(target=someone_scales_out, daemon=True)
    meddler.start()
    out = run_scale(exp, options, console=Console(quiet=True), control=control())
    meddler.join(timeout=5)
    size = out.sizes[0]
    assert size.drifted and size.stopped_reason == "task-drift"
    run = load_run(tmp_path / "drift" / "drift-n2")
    assert run.summary is not None
    drifted = [s for s in run.summary.stages if s.verdict == "invalid: task drift"]
    assert len(drifted) == 1 and "drifted" in drifted[0].reasons[0]
    assert out.fit is None and any("drifted" in w for w in out.warnings)
    assert aws.desired() == 1 and aws.suspended() == NOT_SUSPENDED


@pytest.mark.waits
def test_desired_count_and_autoscaling_restored_after_ctrl_c(aws: Aws, sandbox: RunningSandbox, tmp_path: Path) -> None:
    """SIGTERM takes the same path (tests/scale/test_ecs_control.py sends it in-process)."""
    path = tmp_path / "exp.toml"
    path.write_text(tomli_w.dumps(experiment(sandbox).model_dump(mode="json", exclude_none=True)))
    env = {**aws.env, "DD_API_KEY": "sandbox-api-key", "DD_APP_KEY": "sandbox-app-key", "PYTHONUNBUFFERED": "1"}
    args = [sys.executable, "-m", "capacity", "scale", str(path), "--sizes", "2,3", "--json", "--out", str(tmp_path)]
    proc = subprocess.Popen(args, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while not list(tmp_path.glob("*/*-n2/manifest.json")) and time.monotonic() < deadline:
            assert proc.poll() is None, proc.communicate()[1][-2000:]
            time.sleep(0.2)
        assert aws.desired() == 2 and all(aws.suspended().values())
        time.sleep(2.0)  # mid-stage
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 130, stderr[-2000:]
    assert aws.desired() == 1
    assert aws.suspended() == NOT_SUSPENDED
    data = json.loads(stdout)
    assert data["stopped_reason"] == "interrupted" and [s["app_tasks"] for s in data["sizes"]] == [2]
