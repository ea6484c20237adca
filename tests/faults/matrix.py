"""The fault matrix (issue 21): each fault driven against a short search on loopback, and what the tool said.

A fault run is three stages of 3 s (10, 20, 30 req/s) against a loopback target, server metrics from
the agent-shaped fake Datadog (or the sandbox's own endpoint), and the fault made while the search
runs. Each run answers the contract's line ``fault, survived (yes/no), stopped_reason, stages lost``:
*survived* means the tool exited as designed (0 or 1, a summary written, no traceback); *stages lost*
counts stages the run log says finished that have no stage file on disk.
"""

from __future__ import annotations

import contextlib
import json
import re
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from tests.faults.harness import SearchRun, agent_fake, experiment, run_search
from tests.load.servers import DelayServer
from tests.observe.fake_datadog import AgentShape, FakeDatadog

RATES = (10.0, 20.0, 30.0)
DEMOGRAPHICS = "/api/v1/vista-sites/442/patient_demographics_status?patientDfn=1"


@dataclass
class FaultResult:
    fault: str
    run: SearchRun
    notes: list[str] = field(default_factory=list)

    @property
    def survived(self) -> bool:
        return self.run.returncode in (0, 1) and bool(self.run.summary) and "Traceback" not in self.run.stderr

    @property
    def stopped_reason(self) -> str:
        return str(self.run.summary.get("stopped_reason", "(no summary)"))

    @property
    def stages_lost(self) -> int:
        log = (self.run.run_dir / "run.log").read_text() if self.run.run_dir else ""
        finished = set(re.findall(r"stage (\d+): (?:pass|fail|invalid|interrupted)", log))
        return max(0, len(finished) - self.run.stages_on_disk)

    @property
    def verdicts(self) -> list[str]:
        return [str(s["verdict"]) for s in self.run.stages]

    def line(self) -> str:
        said = "; ".join(self.notes) or "-"
        return (
            f"{self.fault}, {'yes' if self.survived else 'no'}, {self.stopped_reason}, {self.stages_lost}"
            f"  | verdicts {'/'.join(self.verdicts) or '-'} | {said}"
        )


def _after(seconds: float, fn: Callable[[], None]) -> threading.Timer:
    t = threading.Timer(seconds, fn)
    t.daemon = True
    t.start()
    return t


def _when_stage_file(run_root: Path, index: int, fn: Callable[[], None], timeout_s: float = 90.0) -> threading.Thread:
    """Call ``fn`` once ``stage-<index>.json`` is on disk in the (single) run folder under ``run_root``."""

    def watch() -> None:
        deadline = time.time() + timeout_s
        while time.time() < deadline:
            if list(run_root.glob(f"*/stages/stage-{index:03d}.json")):
                fn()
                return
            time.sleep(0.05)

    t = threading.Thread(target=watch, daemon=True)
    t.start()
    return t


def _when_logged(run_root: Path, needle: str, fn: Callable[[], None], timeout_s: float = 90.0) -> threading.Thread:
    """Call ``fn`` once the (single) run folder's ``run.log`` under ``run_root`` holds ``needle``."""

    def watch() -> None:
        deadline = time.time() + timeout_s
        while time.time() < deadline:
            for log in run_root.glob("*/run.log"):
                if needle in log.read_text(errors="replace"):
                    fn()
                    return
            time.sleep(0.05)

    t = threading.Thread(target=watch, daemon=True)
    t.start()
    return t


@contextlib.contextmanager
def _loopback(shape: AgentShape | None = None) -> Iterator[tuple[FakeDatadog, DelayServer]]:
    fake, _ = agent_fake(shape)
    try:
        with DelayServer(0.005) as target:
            yield fake, target
    finally:
        fake.__exit__(None, None, None)


def _warnings(run: SearchRun, *needles: str) -> list[str]:
    return [w for w in run.summary.get("warnings", []) if any(n in w for n in needles)]


# ------------------------------------------------------------------------------------------ faults
def steady_background_queue(tmp: Path) -> FaultResult:
    with _loopback(AgentShape(queue_depth=10.0)) as (fake, target):
        run = run_search(experiment(target.url, fake.url, RATES), tmp)
    base = json.loads((run.run_dir / "manifest.json").read_text()).get("baseline", {}) if run.run_dir else {}
    return FaultResult("steady background queue (10 deep)", run, [f"baseline queue {base.get('queue_size')}"])


def datadog_5xx(tmp: Path) -> FaultResult:
    with _loopback() as (fake, target):

        def outage() -> None:  # from 1 s into stage 0 (after the preflight and the baseline, however long)
            start = time.time() + 1.0
            fake.outage = (start, start + 60.0, 503)

        _when_logged(tmp / "results", "stage 0: ", outage)
        run = run_search(experiment(target.url, fake.url, RATES), tmp, timeout=240)
    notes = [f"{len(_warnings(run, 'blind guard'))} blind-guard warnings", f"{fake.calls()} query calls"]
    return FaultResult("Datadog 5xx for 60 s mid-stage", run, notes)


def points_90s_late(tmp: Path) -> FaultResult:
    """The agent's points 90 s behind; they have arrived by the catch-up pass (lag lifted after the last stage)."""
    with _loopback(AgentShape(mem_usage_mib=1900.0, cache_share=0.0)) as (fake, target):  # 93% of 2048 MiB
        fake.lag_s = {"ecs.fargate.": 90.0}
        _when_stage_file(tmp / "results", len(RATES) - 1, lambda: fake.lag_s.clear())
        run = run_search(experiment(target.url, fake.url, RATES), tmp)
    rejudged = sum(1 for s in run.stages if s.get("rejudged"))
    notes = [f"{rejudged} stage(s) re-judged", *[w[:80] for w in _warnings(run, "re-judged")][:1]]
    return FaultResult("points arriving 90 s late", run, notes)


def worker_killed(tmp: Path) -> FaultResult:
    with _loopback() as (fake, target):
        exp = experiment(target.url, fake.url, (20.0, 40.0, 60.0))
        killed: list[int] = []

        def kill_one() -> None:
            for p in psutil.process_iter(["pid", "cmdline"]):
                cmd = p.info.get("cmdline") or []
                if "capacity.load.worker" in cmd and str(tmp) in " ".join(_parents_cmd(p)):
                    p.kill()
                    killed.append(p.pid)
                    return

        _when_stage_file(tmp / "results", 0, lambda: _after(1.5, kill_one) and None)
        run = run_search(exp, tmp, extra_args=("--workers", "2"))
    return FaultResult("a worker killed mid-stage", run, [f"killed worker pid {killed[0] if killed else '-'}"])


def _parents_cmd(p: psutil.Process) -> list[str]:
    with contextlib.suppress(psutil.Error):
        return [" ".join(a.cmdline()) for a in p.parents()]
    return []


def app_task_killed(tmp: Path) -> FaultResult:
    from capacity.sandbox import SandboxConfig, run_sandbox

    cfg = SandboxConfig(app_tasks=2, threads=4, service_ms=20.0, sidekiq_tasks=1)
    with run_sandbox(cfg) as sb:
        apps = [pid for pid in sb.task_pids if "app" in psutil.Process(pid).cmdline()]
        demographics = {"name": "demographics", "method": "GET", "path": DEMOGRAPHICS}
        exp = experiment(
            sb.base_url,
            sb.base_url,
            RATES,
            workload={"endpoints": [demographics]},
            metrics={"intervals": {"*": 1}, "rollup_seconds": 1, "cluster": "sandbox"},
        )
        _when_stage_file(tmp / "results", 0, lambda: _after(1.5, lambda: psutil.Process(apps[0]).kill()) and None)
        run = run_search(exp, tmp)
    return FaultResult("an app task killed mid-stage", run, [f"{len(apps)} app tasks, one killed in stage 1"])


def proxy_429_503(tmp: Path) -> FaultResult:
    with _loopback() as (fake, target):

        def flap() -> None:
            target.status = 503
            _after(1.0, lambda: setattr(target, "status", 429))
            _after(2.0, lambda: setattr(target, "status", 200))

        _when_stage_file(tmp / "results", 0, lambda: _after(1.5, flap) and None)
        run = run_search(experiment(target.url, fake.url, RATES), tmp)
    codes = {k: v for s in run.stages for k, v in s.get("status_codes", {}).items() if k != "200"}
    return FaultResult("a proxy answering 429/503", run, [f"non-200 codes {codes}"])


def clock_ahead(tmp: Path) -> FaultResult:
    """The generator's clock 30 s ahead of Datadog's: the stage windows it asks for have no points yet."""
    with _loopback() as (fake, target):
        fake.lag_s = {"": 30.0}  # in the generator's terms every point turns up 30 s after its time
        run = run_search(experiment(target.url, fake.url, RATES), tmp)
    return FaultResult(
        "generator clock 30 s ahead", run, [f"{len(_warnings(run, 'blind guard'))} blind-guard warnings"]
    )


def foreign_traffic(tmp: Path) -> FaultResult:
    with _loopback() as (fake, target):
        stop = threading.Event()

        def other_client() -> None:  # someone else's load on the target: 25 req/s, bounded in time and count
            for _ in range(2500):
                if stop.is_set():
                    return
                with contextlib.suppress(OSError):
                    urllib.request.urlopen(target.url + "/foreign", timeout=2).read()
                time.sleep(0.04)

        t = threading.Thread(target=other_client, daemon=True)
        t.start()
        run = run_search(experiment(target.url, fake.url, RATES), tmp)
        stop.set()
        t.join(5)
    foreign = target.paths.get("GET /foreign", 0)
    return FaultResult("foreign traffic on the target", run, [f"{foreign} foreign requests served meanwhile"])


FAULTS: dict[str, Callable[[Path], FaultResult]] = {
    "steady_queue": steady_background_queue,
    "datadog_5xx": datadog_5xx,
    "late_points": points_90s_late,
    "worker_killed": worker_killed,
    "app_task_killed": app_task_killed,
    "proxy_429_503": proxy_429_503,
    "clock_ahead": clock_ahead,
    "foreign_traffic": foreign_traffic,
}


def run_fault(name: str, tmp: Path) -> FaultResult:
    return FAULTS[name](tmp / name)


def as_json(results: list[FaultResult]) -> list[dict[str, Any]]:
    return [
        {"fault": r.fault, "survived": r.survived, "stopped_reason": r.stopped_reason, "stages_lost": r.stages_lost}
        for r in results
    ]
