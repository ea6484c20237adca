"""Server metrics end to end on the sandbox (issue 4) and secrets (issue 6), from one linear search.

The sandbox is started here with required Datadog keys; ``capacity search FILE`` runs in a subprocess
with the keys only in ``DD_API_KEY``/``DD_APP_KEY``, against an experiment whose ``metrics.url`` is
the sandbox's Datadog-compatible API. The sandbox is sized so that the Puma-like pool nears
saturation and the Sidekiq-like queue is overrun only in the last stage:

- app: 1 task x 8 threads / 56 ms = 143 req/s; linear stages 43, 86, 129 req/s (30%, 60%, 90% busy),
  Poisson arrivals and exponential service times, so a backlog forms only near saturation;
- Sidekiq: 1 task x 24 workers / 400 ms = 60 jobs/s; half the requests are summaries (one job each),
  so 21.5, 43 (72%) and 64.5 jobs/s: only the last stage enqueues faster than the queue drains.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import tomli_w

from capacity.observe.presets import SIDEKIQ_PER_QUEUE_SIZE
from capacity.plan.experiment import load_experiment
from capacity.sandbox import SandboxConfig, run_sandbox, truth
from capacity.store import load_run
from tests.conftest import run_cli
from tests.helpers import make_experiment

pytestmark = pytest.mark.slow

API_KEY = "SENTINEL-api-3f9c2a71d05e4b8c"
APP_KEY = "SENTINEL-app-b64e0d93a7c15f20"
STAGES = [43.0, 86.0, 129.0]


def to_toml(data: dict[str, Any]) -> str:
    return tomli_w.dumps(data)


# ---------------------------------------------------------------------------------- the one run
class Run:
    def __init__(self, proc: Any, root: Path, cfg: SandboxConfig, denied_without_keys: int) -> None:
        self.proc = proc
        self.root = root
        self.cfg = cfg
        self.denied_without_keys = denied_without_keys
        dirs = [p for p in root.iterdir() if p.is_dir()] if root.is_dir() else []
        assert len(dirs) == 1, (proc.returncode, proc.stderr[-3000:])
        self.path = dirs[0]
        self.summary = json.loads((self.path / "summary.json").read_text())
        self.stages: pd.DataFrame = load_run(self.path).stages.sort_values("index").reset_index(drop=True)


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    tmp = tmp_path_factory.mktemp("observe")
    base = make_experiment(builtin=True)
    td = base.workload.test_data
    cfg = SandboxConfig(
        app_tasks=1,
        threads=8,
        service_ms=56.0,
        service_dist="exp",
        cpu_ms=1.0,
        sidekiq_tasks=1,
        sidekiq_concurrency=24,
        job_ms=400.0,
        mem_growth_kb=16.0,
        records=td.records,
        seed=td.seed,
        require_keys=(API_KEY, APP_KEY),
    )
    endpoints = [e.model_dump(exclude_none=True) for e in base.workload.endpoints if e.name != "appointment_checkin"]
    for e in endpoints:
        e["rpm"] = 1.0
    with run_sandbox(cfg) as sb:
        try:
            urllib.request.urlopen(f"{sb.query_url}?from=0&to=1&query=avg:puma.backlog{{*}}", timeout=5)
            denied = 200
        except urllib.error.HTTPError as exc:
            denied = exc.code
        exp = base.with_changes(
            target={"base_url": sb.base_url},
            workload={"endpoints": endpoints},
            stages={
                "strategy": "linear",
                "start_rps": STAGES[0],
                "step_rps": STAGES[1] - STAGES[0],
                "max_rps": STAGES[-1],
                "stage_seconds": 5.0,
                "warmup_seconds": 1.0,
                "arrival": "poisson",
                "recovery_timeout_s": 15.0,
            },
            guards={"slo_p95_ms": 800.0},
            # per-queue size: a custom metric (the documented sidekiq.enqueued is a total), to name the queue
            metrics={"url": sb.base_url, "queries": {"queue_size": SIDEKIQ_PER_QUEUE_SIZE}},
            cluster={"app_tasks": 1, "puma_threads": 8, "sidekiq_concurrency": 24},
        )
        data = exp.model_dump(mode="json", exclude_none=True)
        path = tmp / "observe.toml"
        path.write_text(to_toml(data) + "\n", encoding="utf-8")
        assert load_experiment(path).model_dump() == exp.model_dump(), "the test's TOML writer lost something"
        root = tmp / "results"
        proc = run_cli(
            "search", str(path), "--out", str(root), env={"DD_API_KEY": API_KEY, "DD_APP_KEY": APP_KEY}, timeout=180
        )
    return Run(proc, root, cfg, denied)


def spearman(x: pd.Series, y: pd.Series) -> float:
    return float(x.rank().corr(y.rank()))


# ------------------------------------------------------------------------------------------ tests
def test_resources_rise_with_the_stage_rate(run: Run) -> None:
    assert run.proc.returncode == 0, run.proc.stderr[-3000:]
    st = run.stages
    assert list(st["target_rps"]) == pytest.approx(STAGES)
    assert list(st["verdict"]) == ["pass", "pass", "fail"], list(st["reasons"])
    rate = st["target_rps"]
    figures = {c: list(st[c].round(2)) for c in ("m_cpu_pct", "m_mem_mb_max", "m_pool_busy_pct", "m_backlog_max")}
    print("\n" + "\n".join(f"{c}: {v}" for c, v in figures.items()))
    # the stages are 30 points of pool utilisation apart: each figure rises stage by stage
    for col in ("m_cpu_pct", "m_mem_mb_max", "m_pool_busy_pct"):
        assert st[col].notna().all(), col
        assert spearman(rate, st[col]) > 0.8, (col, figures[col])
        assert st[col].iloc[-1] > st[col].iloc[0], (col, figures[col])
    # the busiest stage's pool is about as busy as the utilisation law says (90%; snapshots are noisy)
    util_last = rate.iloc[-1] * run.cfg.service_ms / 1000.0 / run.cfg.threads * 100.0
    assert abs(st["m_pool_busy_pct"].iloc[-1] - util_last) <= 20.0, (figures["m_pool_busy_pct"], util_last)
    # the backlog appears only as the pool nears saturation (90% busy in the last stage)
    assert st["m_backlog_max"].iloc[-1] > st["m_backlog_max"].iloc[0], figures["m_backlog_max"]


def test_queue_guard_fails_the_stage_that_overruns_sidekiq_and_names_the_queue(run: Run) -> None:
    assert run.proc.returncode == 0, run.proc.stderr[-3000:]
    t = truth(run.cfg)
    drain = t.queue_jobs_per_s
    assert drain == pytest.approx(60.0)
    last = run.summary["stages"][-1]
    assert last["verdict"] == "fail"
    queue_reasons = [r for r in last["reasons"] if "queue 'default'" in r]
    assert queue_reasons, last["reasons"]
    # the queue grew (about 64.5 jobs/s enqueued against at most 60 drained; a slope over the few
    # seconds of a short stage, so only its sign and size class are checked)
    growth = last["metrics"]["queue_growth_per_s"]
    print(f"\nqueue growth in the last stage: {growth:.1f} jobs/s; reason: {queue_reasons[0]}")
    assert 1.0 < growth < 20.0
    assert run.summary["stopped_reason"] in ("guard:queue_growth", "guard:queue_latency"), run.summary["stopped_reason"]
    # every stage below the drain rate kept its queue flat
    for s in run.summary["stages"][:-1]:
        assert s["metrics"]["queue_growth_per_s"] <= 1.0, s["metrics"]
        assert not any("queue" in r for r in s["reasons"])


def test_datadog_keys_appear_in_no_output_and_no_result_file(run: Run) -> None:
    assert run.denied_without_keys == 403  # the sandbox's metrics API really demanded the keys
    assert run.proc.returncode == 0, run.proc.stderr[-3000:]
    assert run.stages["m_cpu_pct"].notna().all()  # ... and the run used them: it has server metrics
    files = [p for p in run.root.rglob("*") if p.is_file()]
    names = {p.name for p in files}
    assert {"run.log", "report.html", "manifest.json", "summary.json"} <= names, names
    for key in (API_KEY, APP_KEY):
        assert key not in run.proc.stdout and key not in run.proc.stderr
        for p in files:
            assert key.encode() not in p.read_bytes(), p
