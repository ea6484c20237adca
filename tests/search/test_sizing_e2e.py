"""Issue 5 end to end: search the sandbox at A=1 app task, let ``recommend`` size production for a peak L,
then run the sandbox with the recommended N tasks at L (pool busy at or under the target utilisation) and
with N-1 tasks (over it).

What "utilisation" means here, on both sides of the test: the Puma pool's busy fraction,
``1 - puma.pool_capacity / puma.max_threads`` averaged over the stage (``m_pool_busy_pct``), which by the
utilisation law is load / saturation capacity. ``recommend`` is called with ``signal="saturation"`` and a
throughput headroom h with 1 / (1 + h) = the target, so its share of capacity used at peak is that same
fraction (with the default SLO-capacity signal the headroom applies to the SLO capacity, which is at most
the saturation: the busy fraction at its N is then at most the target, and the task count is never lower;
the test checks that too).

The sandbox here has 16 threads per task and 200 ms service (80 req/s per task): the pool metric is a
once-a-second snapshot of how many threads are busy, and 16 threads keep its noise small (sd of one snapshot
at 50% busy is 0.5/sqrt(16) = 12.5%, about 3% over the ~18 task-seconds of a verification stage).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from capacity.analyze import analyse_run
from capacity.core.models import RunSummary
from capacity.plan.experiment import Experiment
from capacity.sandbox import SandboxConfig, truth
from capacity.search import SearchOptions, run_search
from capacity.size import SizingAsk, recommend
from capacity.store import load_run
from tests.helpers import make_experiment

THREADS = 16
SERVICE_MS = 200.0
TARGET_UTIL = 0.6
RAW_TASKS = 2.5
"""L is chosen so the exact answer is 2.5 raw tasks -> N = 3: the busy fraction is 0.5 at N=3 and 0.75 at N=2,
so a saturation estimate anywhere within -17%..+20% of the truth still gives N = 3."""
SNAPSHOT_TOL = 0.03
"""Allowance for the pool snapshot's sampling noise (about one standard deviation over a stage)."""


def _experiment(tmp: Path, app_tasks: int, **stages: Any) -> Experiment:
    exp = make_experiment(builtin=True)
    plan = {
        "strategy": "linear",
        "stage_seconds": 5.0,
        "warmup_seconds": 1.0,
        "recovery_timeout_s": 15.0,
        "max_stages": 6,
        "max_duration_s": 90.0,
        **stages,
    }
    return exp.with_changes(
        sandbox={"app_tasks": app_tasks, "threads": THREADS, "service_ms": SERVICE_MS, "backlog": 32},
        stages=plan,
        # latency is not the limit under test: goodput (and the backlog's rejections) end the search
        guards={"slo_p95_ms": 3000.0, "slo_p99_ms": None},
        cluster={"app_tasks": app_tasks, "puma_threads": THREADS},
    )


def _run(exp: Experiment, root: Path) -> RunSummary:
    return run_search(exp, options=SearchOptions(results_root=root, write_report=False), console=Console(quiet=True))


def _busy_fraction(summary: RunSummary) -> tuple[float, float]:
    """(busy fraction while the load ran, the stage's m_pool_busy_pct / 100) from the stored pool metrics.

    The stage's metric window ends when the last response is in, so its last one-second bucket can hold a
    snapshot taken after the arrivals stopped (an idle pool); only buckets wholly inside the load count here.
    """
    assert len(summary.stages) == 1, summary.stopped_reason
    stage = summary.stages[0]
    run = load_run(Path(summary.results_dir))
    load_s = run.seconds[run.seconds["phase"] == "measure"]["t"].to_numpy(dtype=float)
    start, end = float(load_s.min()), float(load_s.max()) + 1.0
    m = run.metrics
    m = m[(m["t"] >= start) & (m["t"] + 1.0 <= end)]
    pool = m[m["metric"] == "pool_capacity"].set_index(["t", "group"])["value"]
    threads = m[m["metric"] == "max_threads"].set_index(["t", "group"])["value"]
    free = (pool / threads).dropna()
    assert len(free) >= 4, f"too few pool samples inside the load: {len(free)}"
    stage_busy = stage.metrics.get("pool_busy_pct")
    return float(1.0 - free.mean()), float(stage_busy or math.nan) / 100.0


@pytest.mark.slow
def test_recommended_tasks_hold_the_peak_at_target_utilisation_and_one_fewer_does_not(tmp_path: Path) -> None:
    staging = _experiment(tmp_path, 1, start_rps=45.0, step_rps=20.0, max_rps=125.0)  # never a stage at the truth
    per_task_truth = truth(SandboxConfig.from_settings(staging.sandbox)).pool_rps
    assert per_task_truth == pytest.approx(1 * THREADS / (SERVICE_MS / 1000))  # 80 req/s

    # 1. the staging search at A = 1 task
    summary = _run(staging, tmp_path / "search")
    run = load_run(Path(summary.results_dir))
    analysis = analyse_run(run.stages, run.seconds, staging.guards, n_boot=0)
    assert analysis.saturation.reached, analysis.saturation.note
    saturation = analysis.saturation.value
    assert saturation is not None and saturation == pytest.approx(per_task_truth, rel=0.10)

    # 2. size production for a peak L
    peak = RAW_TASKS * TARGET_UTIL * per_task_truth  # 120 req/s
    production = staging.production.model_copy(
        # the throughput headroom that keeps load at TARGET_UTIL of capacity: 1 / (1 + h) = TARGET_UTIL
        update={
            "zones": 1,
            "n_plus_one": False,
            "min_tasks": 1,
            "growth": 1.0,
            "throughput_headroom": 1 / TARGET_UTIL - 1,
        }
    )
    rec = recommend(
        analysis,
        run.stages,
        staging.cluster,
        production,
        staging.workload,
        ask=SizingAsk(peak_rps=peak, signal="saturation"),
    )
    assert rec.figures["binding_constraint"] == "capacity", rec.binding_constraint
    n = rec.app_tasks
    assert n == math.ceil(peak / (saturation * TARGET_UTIL))
    assert n >= 2, "N-1 must be a cluster that can run"
    # recommend's expected utilisation is load / (N x measured saturation per task): the busy fraction
    assert rec.expected_utilisation == pytest.approx(peak / (n * saturation))
    assert rec.expected_utilisation <= TARGET_UTIL
    # sizing on the SLO capacity (the default) is never smaller: SLO capacity <= saturation
    default = recommend(
        analysis, run.stages, staging.cluster, production, staging.workload, ask=SizingAsk(peak_rps=peak)
    )
    assert default.app_tasks >= n

    # 3. the sandbox with N and with N-1 tasks at L: one linear stage each, utilisation from the pool metric
    measured: dict[int, float] = {}
    whole_window: dict[int, float] = {}
    for tasks in (n, n - 1):
        exp = _experiment(
            tmp_path, tasks, start_rps=peak, max_rps=peak, stage_seconds=8.0, warmup_seconds=2.0, max_stages=1
        )
        measured[tasks], whole_window[tasks] = _busy_fraction(_run(exp, tmp_path / f"verify-{tasks}"))
        # the metric is the utilisation law's load / capacity (the notion recommend uses), within noise
        assert measured[tasks] == pytest.approx(peak / (tasks * per_task_truth), abs=0.08), measured
    assert measured[n] <= TARGET_UTIL + SNAPSHOT_TOL, measured
    assert measured[n - 1] > TARGET_UTIL + SNAPSHOT_TOL, measured
    print(
        f"N={n}: busy {measured[n]:.3f} (stage m_pool_busy_pct {whole_window[n]:.3f}); "
        f"N-1={n - 1}: busy {measured[n - 1]:.3f} ({whole_window[n - 1]:.3f}); saturation {saturation:.1f}"
    )
