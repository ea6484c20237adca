"""Safety end to end on the sandbox (issue 6): the search stops itself before harm.

1. Errors injected above a known rate X (the sandbox's ``error_above_rps`` fault): the stage that
   crosses X is stopped within one guard window of the first error, fails naming the errors, and no
   later stage offers as much; the adaptive bisection stays below it.
2. A slow-draining job queue: the next stage starts only once the queue left behind has drained;
   when it cannot drain within ``recovery_timeout_s`` the run stops with ``no-recovery`` and says why.
"""

from __future__ import annotations

import json
import time
import urllib.parse
import urllib.request
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from capacity.plan.experiment import Experiment
from capacity.sandbox import SandboxConfig, run_sandbox, truth
from capacity.search import SearchOptions, run_search
from capacity.store import load_run
from tests.helpers import make_experiment

pytestmark = [pytest.mark.slow, pytest.mark.waits]


def quiet_search(exp: Experiment, root: Path) -> Any:
    return run_search(
        exp,
        options=SearchOptions(results_root=root, json_mode=True, write_report=False),
        console=Console(quiet=True),
    )


def ts(d: datetime | None) -> float:
    assert d is not None
    return d.timestamp()


# --------------------------------------------------------------------------- errors above a rate X
X_RPS = 70.0


def test_errors_above_a_rate_stop_the_crossing_stage_within_one_guard_window(tmp_path: Path) -> None:
    base = make_experiment(builtin=True)
    exp = base.with_changes(
        sandbox={"error_above_rps": X_RPS},
        # adaptive: 40 holds, 80 crosses X; then the search probes below 80 until the gap is under 40%
        stages={
            "strategy": "adaptive",
            "start_rps": 40.0,
            "growth": 2.0,
            "max_rps": 200.0,
            "resolution": 0.4,
            "stage_seconds": 7.0,
            "warmup_seconds": 1.0,
            "recovery_timeout_s": 10.0,
        },
        metrics={"source": "none"},
    )
    pool = truth(SandboxConfig.from_settings(exp.sandbox)).pool_rps
    assert pool >= 2 * X_RPS  # every error below is the injected fault, not the thread pools
    summary = quiet_search(exp, tmp_path)
    stages = summary.stages
    rates = [s.target_rps for s in stages]
    crossing = next(i for i, s in enumerate(stages) if s.target_rps > X_RPS)
    cross = stages[crossing]
    assert rates[:2] == pytest.approx([40.0, 80.0]) and crossing == 1

    # the stage that crossed X failed on errors and was cut short
    assert cross.verdict == "fail"
    assert cross.reasons[0].startswith("error ratio"), cross.reasons
    assert cross.aborted_early and cross.duration_s < exp.stages.stage_seconds
    assert summary.stopped_reason == "resolution"  # a code; the prose beside it is stop_detail
    assert summary.stop_detail == f"guard:errors at {cross.target_rps:g}/s"
    assert summary.stopped_text == f"resolution (guard:errors at {cross.target_rps:g}/s)"

    # ... within one guard window (+2 s: the window skips a stage's first 2 s; +1 s of slack)
    run = load_run(Path(summary.results_dir))
    series = run.seconds[run.seconds["stage"] == crossing].sort_values("t")
    first_error_t = float(series.loc[series["errors"] > 0, "t"].min())
    load_end_t = float(series["t"].max()) + 1.0  # the last second the stage offered load
    breach_to_stop = load_end_t - first_error_t
    window = exp.guards.window_seconds
    into = first_error_t - ts(cross.started_at)
    print(f"\nerrors from {into:.2f} s into the stage; breach to stop {breach_to_stop:.2f} s")
    assert breach_to_stop <= window + 3.0, series[["t", "offered", "ok", "errors"]].to_string()
    assert ts(cross.ended_at) - first_error_t <= window + 3.5
    # errors began at the crossing (within about a second of its start), not before it
    assert first_error_t - ts(cross.started_at) <= 1.5
    assert all(s.errors == 0 and s.verdict == "pass" for s in stages[:crossing])

    # never more than the stage that crossed: the bisection stays below it, and below X it passes again
    later = stages[crossing + 1 :]
    assert later, "the adaptive search should bisect below the failing rate"
    assert all(s.target_rps < cross.target_rps for s in later)
    assert all(s.verdict == "pass" and s.errors == 0 for s in later if s.target_rps < X_RPS)
    assert summary.slo_capacity_rps is not None and summary.slo_capacity_rps < X_RPS
    assert max(s.offered_rps for s in stages) < cross.target_rps * 1.05


# ----------------------------------------------------------------------------- slow-draining queue
DRAIN_CFG = dict(
    app_tasks=2,
    threads=4,
    service_ms=20.0,
    service_dist="const",
    cpu_ms=0.3,
    sidekiq_tasks=1,
    sidekiq_concurrency=1,
    job_ms=100.0,  # 10 jobs/s drain
)


def queue_series(base_url: str, start: float, end: float) -> list[tuple[float, float]]:
    """(second, jobs waiting) from the sandbox's own Datadog-compatible API."""
    params = urllib.parse.urlencode(
        {"from": int(start), "to": int(end) + 1, "query": "max:sidekiq.queue.size{queue:default}"}
    )
    with urllib.request.urlopen(f"{base_url}/api/v1/query?{params}", timeout=10) as resp:
        body = json.loads(resp.read())
    (series,) = body["series"]
    return [(p[0] / 1000.0, float(p[1])) for p in series["pointlist"] if p[1] is not None]


def test_next_stage_waits_for_the_queue_to_drain_and_no_drain_stops_the_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    base = make_experiment(builtin=True)
    td = base.workload.test_data
    endpoints = [e.model_dump() for e in base.workload.endpoints if e.name != "appointment_checkin"]
    for e in endpoints:
        e["rpm"] = 1.0  # half the requests are summaries, each enqueues one job
    cfg = SandboxConfig(**DRAIN_CFG, records=td.records, seed=td.seed)  # type: ignore[arg-type]
    drain = truth(cfg).queue_jobs_per_s
    assert drain == pytest.approx(10.0)
    monkeypatch.setenv("DD_API_KEY", "unused-api-key")
    monkeypatch.setenv("DD_APP_KEY", "unused-app-key")
    with run_sandbox(cfg) as sb:
        exp = base.with_changes(
            target={"base_url": sb.base_url},
            workload={"endpoints": endpoints},
            # stage 0: 15 summaries/s leave ~25 jobs (2.5 s of drain); stage 1: 35/s leave ~125 (12.5 s)
            stages={
                "strategy": "linear",
                "start_rps": 30.0,
                "step_rps": 40.0,
                "max_rps": 70.0,
                "stage_seconds": 5.0,
                "warmup_seconds": 1.0,
                "recovery_timeout_s": 8.0,
            },
            # the stages themselves pass: only the recovery rule is under test
            guards={"max_queue_growth_per_s": None, "max_queue_latency_s": None, "slo_p95_ms": 500.0},
            metrics={"url": sb.base_url},
        )
        summary = quiet_search(exp, tmp_path)
        gave_up_at = time.time()
        time.sleep(1.2)  # the last second's queue sample is published at the next second
        queue = queue_series(sb.base_url, ts(summary.stages[0].started_at) - 1, gave_up_at)

    s0, s1 = summary.stages
    assert [s0.verdict, s1.verdict] == ["pass", "pass"], (s0.reasons, s1.reasons)
    end0, start1 = ts(s0.ended_at), ts(s1.started_at)

    # (a) stage 0 left a queue; stage 1 started only once it was (nearly) empty, and soon after
    left_behind = max(v for t, v in queue if end0 - 1 <= t < end0 + 1)
    assert left_behind > 10, queue
    drained_at = min(t + 1 for t, v in queue if t >= end0 - 1 and v <= 5)  # end of the first drained second
    assert drained_at <= start1 + 0.5, (drained_at, start1, queue)
    assert all(v > 5 for t, v in queue if end0 - 1 <= t and t + 1 < drained_at)
    wait_s = start1 - end0
    drained_after = drained_at - end0
    print(
        f"\nstage 0 left {left_behind:.0f} jobs; drained {drained_after:.1f} s after it, stage 1 after {wait_s:.1f} s"
    )
    assert wait_s >= (left_behind - 5) / drain * 0.6  # it did wait for the drain...
    assert start1 - drained_at <= 4.5  # ...and not much longer (3 s metric window + 1 s publish lag)

    # (b) stage 1's queue could not drain in 8 s: no further stage, and the summary says why
    assert summary.stopped_reason == "no-recovery"
    assert len(summary.stages) == 2
    why = [w for w in summary.warnings if "did not recover" in w]
    assert why and "within 8 s" in why[0] and "job queue still" in why[0], summary.warnings
    still = [v for t, v in queue if gave_up_at - 3 <= t < gave_up_at - 1]
    assert still and min(still) > 5, queue
    on_disk = json.loads((Path(summary.results_dir) / "summary.json").read_text())
    assert on_disk["stopped_reason"] == "no-recovery" and any("job queue still" in w for w in on_disk["warnings"])
