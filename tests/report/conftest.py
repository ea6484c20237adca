"""Synthetic run folders of known capacity, written through the real RunStore (no load, no sandbox).

A run of capacity C probes 0.4C..1.2C: stages up to C pass, above it fail on p95; goodput follows the
offered rate up to 1.05C. Its summary carries SLO capacity C with the interval [C(1-w), C(1+w)].
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from capacity.core.models import Estimate, RunSummary, SecondSample
from capacity.plan.experiment import Experiment
from capacity.store import RunStore
from tests.helpers import make_experiment, make_stage_result

FACTORS = (0.4, 0.6, 0.8, 1.0, 1.2)
STAGE_S = 10
WARMUP_S = 2


def experiment(name: str = "nightly-test") -> Experiment:
    return make_experiment(
        name=name,
        workload={"endpoints": [{"name": "status", "method": "POST", "path": "/status"}]},
        stages={"stage_seconds": STAGE_S, "warmup_seconds": WARMUP_S},
        guards={"slo_p95_ms": 200.0},
        metrics={"source": "none"},
    )


def make_run(
    root: Path,
    capacity: float | None,
    *,
    name: str = "nightly-test",
    run_id: str | None = None,
    started: datetime | None = None,
    width: float = 0.05,
    reached: bool = True,
    with_summary: bool = True,
) -> Path:
    """Write a complete run folder; ``capacity=None`` makes a run whose SLO capacity was not determined."""
    started = started or datetime(2026, 11, 27, 3, 0, tzinfo=UTC)
    cap = capacity or 100.0
    store = RunStore.create(root, experiment(name), run_id=run_id, command="synthetic")
    store.update_manifest(started_at=started.isoformat())
    results, path = [], []
    for i, f in enumerate(FACTORS):
        rate = cap * f
        t0 = started + timedelta(seconds=(STAGE_S + 5) * i)
        achieved = min(rate, cap * 1.05)
        p95 = 20.0 + 10.0 * f + (2000.0 * (f - 1.0) if f > 1.0 else 0.0)
        verdict = "pass" if f <= 1.0 else "fail"
        reasons = [] if verdict == "pass" else [f"p95 {p95:.0f} ms > SLO 200 ms"]
        secs = [
            SecondSample(
                stage=i,
                t=t0.timestamp() + s,
                phase="warmup" if s < WARMUP_S else "measure",
                target_rps=rate,
                offered=round(rate),
                ok=round(achieved),
                errors=0,
                dropped=0,
                inflight=3,
                p50_ms=p95 / 2,
                p95_ms=p95,
                p99_ms=p95 * 1.3,
                generator_cpu_pct=12.0,
            )
            for s in range(STAGE_S)
        ]
        metrics = pd.DataFrame(
            {
                "stage": i,
                "metric": "cpu_pct",
                "group": "task_arn:a",
                "t": [t0.timestamp() + s for s in range(0, STAGE_S, 5)],
                "value": 70.0 * f,
            }
        )
        result = make_stage_result(
            index=i,
            target_rps=rate,
            achieved_rps=achieved,
            p50_ms=p95 / 2,
            p95_ms=p95,
            p99_ms=p95 * 1.3,
            verdict=verdict,
            reasons=reasons,
            metrics={
                "cpu_pct": 70.0 * f,
                "mem_pct": 30.0 + 5 * f,
                "pool_busy_pct": min(100.0, 80.0 * f),
                "queue_size_max": 2.0 * f,
            },
            probe="ramp",
            started_at=t0,
            measure_from=t0 + timedelta(seconds=WARMUP_S),
            ended_at=t0 + timedelta(seconds=STAGE_S),
            duration_s=STAGE_S,
            requests=round(rate) * STAGE_S,
            ok=round(achieved) * STAGE_S,
            generator_cpu_pct=12.0,
        )
        store.write_stage(result, secs, metrics)
        results.append(result)
        path.append(
            {
                "index": i,
                "rate": rate,
                "probe": "ramp",
                "why": f"ramp x{f}",
                "verdict": verdict,
                "reason": reasons[0] if reasons else "",
            }
        )
    if capacity is None:
        slo = Estimate(value=None, reached=False, note="insufficient data: 1 usable stage(s)")
    else:
        slo = Estimate(
            value=cap,
            lo=cap * (1 - width),
            hi=cap * (1 + width),
            signal="p95_ms",
            method="highest rate at which every guard holds",
            reached=reached,
        )
    sat = Estimate(value=cap * 1.05, lo=cap * 1.0, hi=cap * 1.1, signal="goodput", method="goodput vs offered")
    knee = Estimate(value=cap * 0.9, lo=cap * 0.85, hi=cap * 0.95, signal="p95_ms", method="kneedle")
    rec: dict[str, Any] | None = None
    if capacity is not None:
        rec = {
            "app_tasks": math.ceil(600 / cap) * 3,
            "sidekiq_tasks": 3,
            "binding_constraint": "app threads",
            "expected_utilisation": 0.55,
            "inputs": {"per_task_rps": cap / 2, "peak_rps": 150.0, "zones": 3},
        }
    store.write_json(
        "analysis.json",
        {"status": "ok", "slo_capacity": slo.model_dump(mode="json"), "notes": ["synthetic run"]},
    )
    if with_summary:
        store.write_summary(
            RunSummary(
                run_id=store.run_id,
                results_dir=str(store.path),
                experiment=name,
                target="http://127.0.0.1:9",
                saturation_rps=sat.value,
                slo_capacity_rps=slo.value,
                knee_rps=knee.value,
                capacity_interval=[slo.lo, slo.hi],
                stopped_reason="guard:p95",
                stages=results,
                recommendation=rec,
                started_at=started,
                ended_at=started + timedelta(minutes=2),
                estimates={"slo_capacity": slo, "saturation": sat, "knee": knee},
                search_path=path,
            )
        )
    store.finish(started + timedelta(minutes=2))
    return store.path


@pytest.fixture
def synthetic_run() -> Callable[..., Path]:
    return make_run
