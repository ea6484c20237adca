"""End to end on the sandbox: 3 app tasks lose one at a rate 2 tasks carry (pass) and at a rate only 3
carry (fail, naming the breach after the loss); and the sandbox standing in for an ECS service on
moto's server, replacing a task stopped through the API.

Rates come from the sandbox's formula (``capacity.sandbox.truth``): 60% of what 2 tasks' pools carry,
and 80% of what 3 carry (20% above 2 tasks' ceiling). Runs are 24 s: 4-s segments, the loss at 8 s,
the replacement a few seconds later.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import tomli_w
from rich.console import Console

from capacity.cluster.ecs_tasks import EcsServiceTasks
from capacity.sandbox import RunningSandbox, SandboxConfig, run_sandbox, truth
from capacity.search import SearchOptions
from capacity.search.failover_control import EcsTaskControl
from capacity.search.failover_plan import FailoverPlan
from capacity.search.failover_run import run_failover
from tests.conftest import run_cli
from tests.helpers import experiment_data, make_experiment
from tests.scale.conftest import CLUSTER, REGION, SERVICE, Aws

pytestmark = [pytest.mark.slow, pytest.mark.waits]

DELAY_S = 5.0
RUN = ["--duration", "24s", "--segment-seconds", "4", "--loss-at", "8s", "--deadline", "30s"]


def _three_tasks_settings() -> tuple[dict[str, Any], dict[str, Any]]:
    data = experiment_data(builtin=True)
    data["sandbox"]["app_tasks"] = data["cluster"]["app_tasks"] = 3
    return data, data["sandbox"]


def _three_tasks(tmp_path: Path) -> tuple[Path, dict[str, Any]]:
    data, _ = _three_tasks_settings()
    path = tmp_path / "three.toml"
    path.write_text(tomli_w.dumps(data), encoding="utf-8")
    return path, data["sandbox"]


def _truth(sandbox: dict[str, Any]) -> Any:
    return truth(SandboxConfig(**sandbox))


def _fake_search(tmp_path: Path, per_task_rps: float) -> Path:
    """A run folder whose recommendation measured ``per_task_rps`` (what ``--from`` reads)."""
    run = tmp_path / "search-run"
    run.mkdir()
    (run / "manifest.json").write_text(json.dumps({"run_id": "search-run"}))
    rec = {"app_tasks": 4, "peak_rps": 100.0, "per_task_rps": per_task_rps, "inputs": {"growth": 1.0}}
    summary = {"run_id": "search-run", "results_dir": str(run), "experiment": "x", "target": "t"}
    (run / "summary.json").write_text(json.dumps({**summary, "recommendation": rec}))
    return run


Done = dict[str, tuple[subprocess.CompletedProcess[str], Path]]


@pytest.fixture(scope="module")
def losses(tmp_path_factory: pytest.TempPathFactory) -> Done:
    """The two failover runs below, side by side (each its own 3-task sandbox; 50-ms requests that wait,
    96 and 192 req/s): the pair costs one 24-s run, not two."""
    spare, tight = tmp_path_factory.mktemp("spare"), tmp_path_factory.mktemp("tight")
    exp, sandbox = _three_tasks(spare)
    t = _truth(sandbox)
    source = _fake_search(spare, t.lambda_rps)
    runs = {
        "spare": (
            spare / "results",
            exp,
            ["--rps", f"{0.6 * t.rps_at(2):.1f}", "--from", str(source), "--replacement-delay", f"{DELAY_S:g}s"],
        ),
        "tight": (tight / "results", _three_tasks(tight)[0], ["--rps", f"{0.8 * t.rps_at(3):.1f}", "--no-report"]),
    }
    runs["tight"][2].extend(["--replacement-delay", "3s"])
    done: Done = {}

    def one(name: str) -> None:
        out, path, args = runs[name]
        done[name] = (run_cli("failover", str(path), *args, *RUN, "--json", "--out", str(out)), out)

    threads = [threading.Thread(target=one, args=(name,), daemon=True) for name in runs]  # greenlets here
    for th in threads:
        th.start()
    for th in threads:
        th.join(150)
    return done


def test_one_task_lost_at_a_rate_two_tasks_carry_passes(losses: Done) -> None:
    _, sandbox = _three_tasks_settings()
    t = _truth(sandbox)
    rate = 0.6 * t.rps_at(2)
    cp, out = losses["spare"]
    assert cp.returncode == 0, cp.stderr
    result = json.loads(cp.stdout)
    assert set(result) == {"verdict", "lost_tasks", "replaced_after_s", "periods", "first_breach"}
    print({k: (round(p["goodput_rps"], 1), round(p["p95_ms"])) for k, p in result["periods"].items()}, rate)
    assert result["verdict"] == "pass" and result["first_breach"] is None and len(result["lost_tasks"]) == 1
    assert DELAY_S - 0.5 <= result["replaced_after_s"] <= DELAY_S + 3
    for name in ("before", "during", "after"):
        p = result["periods"][name]
        assert p["goodput_rps"] == pytest.approx(rate, rel=0.06) and p["error_ratio"] == 0 and p["dropped"] == 0
        assert p["p95_ms"] < 250 and p["p99_ms"] >= p["p95_ms"]
    (run,) = [d for d in out.iterdir() if d.is_dir()]
    record = json.loads((run / "failover.json").read_text())
    per_task = record["per_task"]
    assert per_task["surviving_tasks"] == 2 and per_task["capacity_rps_per_task"] == pytest.approx(t.lambda_rps)
    assert per_task["offered_rps_per_task"] == pytest.approx(rate / 2, rel=0.03)
    assert record["period_detail"]["during"]["from_s"] == pytest.approx(0, abs=0.5)
    assert "Failover: losing a task at peak" in (run / "report.html").read_text()
    assert (run / "plots" / "failover.png").stat().st_size > 1000


def test_the_same_cluster_without_the_spare_fails_and_names_the_breach_after_the_loss(losses: Done) -> None:
    _, sandbox = _three_tasks_settings()
    t = _truth(sandbox)
    rate = 0.8 * t.rps_at(3)
    assert rate > 1.15 * t.rps_at(2)  # only 3 tasks carry it
    cp, _ = losses["tight"]
    assert cp.returncode == 1, cp.stderr
    result = json.loads(cp.stdout)
    assert result["verdict"] == "fail" and len(result["lost_tasks"]) == 1
    breach = result["first_breach"]
    assert breach["code"] in {"errors", "p95", "goodput", "dropped", "backlog"}, breach
    assert 0 < breach["at_s_after_loss"] <= 8, breach
    before, during = result["periods"]["before"], result["periods"]["during"]
    print(breach, {k: (p["goodput_rps"], p["p95_ms"]) for k, p in result["periods"].items()})
    assert before["error_ratio"] < 0.01 and before["p95_ms"] < 250  # 3 tasks held it
    assert during["goodput_rps"] < 0.95 * rate  # 2 tasks could not
    assert during["goodput_rps"] <= 1.05 * t.rps_at(2)
    assert result["replaced_after_s"] is not None  # the run still waited for the replacement


@pytest.fixture
def following(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> Iterator[RunningSandbox]:
    """A 3-task sandbox standing in for the ECS service on moto (its tasks registered there)."""
    monkeypatch.setenv("DD_API_KEY", "sandbox-api-key")
    monkeypatch.setenv("DD_APP_KEY", "sandbox-app-key")
    ecs = aws.ecs()
    for old in ecs.list_tasks(cluster=CLUSTER, desiredStatus="RUNNING")["taskArns"]:
        ecs.stop_task(cluster=CLUSTER, task=old, reason="test set-up")
    ecs.update_service(cluster=CLUSTER, service=SERVICE, desiredCount=3)
    cfg = SandboxConfig(
        app_tasks=3,
        seed=42,
        records=20_000,
        follow_ecs=f"{CLUSTER}/{SERVICE}",
        ecs_poll_s=0.3,
        replacement_delay_s=DELAY_S,
    )
    with run_sandbox(cfg) as sb:
        deadline = time.monotonic() + 20
        while len(EcsServiceTasks(CLUSTER, SERVICE, region=REGION).tasks()) < 3 and time.monotonic() < deadline:
            time.sleep(0.2)
        yield sb


def test_a_task_stopped_through_the_ecs_api_is_replaced_and_timed(
    aws: Aws, following: RunningSandbox, tmp_path: Path
) -> None:
    base = make_experiment(builtin=True)
    exp = base.with_changes(
        target={"base_url": following.base_url},
        metrics={"url": following.base_url},
        sandbox={"app_tasks": 3},
        cluster={"app_tasks": 3, "ecs_cluster": CLUSTER, "ecs_service": SERVICE, "region": REGION},
    )
    rate = 0.6 * truth(following.config).rps_at(2)
    plan = FailoverPlan(rate, "test", duration_s=20, loss_at_s=8, segment_s=4, deadline_s=30)
    before = sorted(t.arn for t in EcsServiceTasks(CLUSTER, SERVICE, region=REGION).tasks())
    control = EcsTaskControl(EcsServiceTasks(CLUSTER, SERVICE, region=REGION))
    options = SearchOptions(results_root=tmp_path, json_mode=True, write_report=False)
    outcome = run_failover(exp, plan, options=options, console=Console(quiet=True), control=control)
    result = outcome.contract()
    assert outcome.exit_code == 0 and result["verdict"] == "pass", outcome.record["period_detail"]
    assert result["lost_tasks"] == before[:1]  # one of the service's tasks, stopped through StopTask
    stopped = aws.ecs().describe_tasks(cluster=CLUSTER, tasks=before[:1])["tasks"][0]
    assert stopped["desiredStatus"] == "STOPPED" and "capacity failover" in stopped["stoppedReason"]
    # the sandbox followed: it stopped one of its own tasks and a replacement came DELAY_S later
    with urllib.request.urlopen(f"{following.base_url}/_sandbox/tasks", timeout=5) as resp:
        listing = json.loads(resp.read())
    assert len(listing["stopped"]) == 1 and listing["running"] == 3
    assert DELAY_S - 0.5 <= result["replaced_after_s"] <= DELAY_S + 3
    after = {t.arn for t in EcsServiceTasks(CLUSTER, SERVICE, region=REGION).tasks()}
    assert len(after) == 3 and before[0] not in after
    assert aws.desired() == 3  # nothing set, nothing restored


def test_ctrl_c_after_the_loss_keeps_the_segments_and_exits_130(tmp_path: Path) -> None:
    import signal
    import subprocess
    import sys

    from tests.conftest import REPO

    exp, _ = _three_tasks(tmp_path)
    out = tmp_path / "results"
    cmd = [sys.executable, "-m", "capacity", "failover", str(exp), "--rps", "60", *RUN, "--replacement-delay", "30s"]
    proc = subprocess.Popen(
        [*cmd, "--json", "--no-report", "--out", str(out)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 90
        while not list(out.glob("*/stages/stage-002.json")) and time.monotonic() < deadline:
            time.sleep(0.2)
        proc.send_signal(signal.SIGINT)
        stdout, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    result = json.loads(stdout)
    assert result["verdict"] == "interrupted" and len(result["lost_tasks"]) == 1
    assert result["replaced_after_s"] is None  # the 30-s replacement had not come
    (run,) = [d for d in out.iterdir() if d.is_dir()]
    assert json.loads((run / "summary.json").read_text())["stopped_reason"] == "interrupted"
    assert len(list((run / "stages").glob("stage-*.json"))) >= 3
    assert json.loads((run / "failover.json").read_text())["stopped_reason"] == "interrupted"
