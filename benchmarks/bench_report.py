"""How long the report takes for a long run, against just loading that run (same process, same data).

    .venv/bin/python benchmarks/bench_report.py [--stages 30] [--stage-seconds 300]

Prints the wall time of ``load_run`` (baseline), of ``write_report`` and their ratio, for a synthetic
run folder written through the real RunStore (no load is sent anywhere).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from capacity.core.models import RunSummary, SecondSample, StageResult
from capacity.plan.experiment import parse_experiment
from capacity.report import write_report
from capacity.store import RunStore, load_run


def build(root: Path, stages: int, stage_s: int) -> Path:
    exp = parse_experiment(
        {
            "name": "bench-report",
            "target": {"base_url": "http://127.0.0.1:9"},
            "workload": {"endpoints": [{"name": "a", "path": "/a"}]},
            "metrics": {"source": "none"},
        }
    )
    store = RunStore.create(root, exp)
    t0 = datetime(2026, 11, 27, tzinfo=UTC)
    results = []
    for i in range(stages):
        rate = 10.0 * (i + 1)
        start = t0 + timedelta(seconds=(stage_s + 5) * i)
        verdict = "pass" if i < stages - 1 else "fail"
        secs = [
            SecondSample(
                stage=i,
                t=start.timestamp() + s,
                phase="warmup" if s < 5 else "measure",
                target_rps=rate,
                offered=int(rate),
                ok=int(rate),
                errors=0,
                dropped=0,
                inflight=2,
                p50_ms=10 + i,
                p95_ms=20 + 2 * i,
                p99_ms=30 + 3 * i,
            )
            for s in range(stage_s)
        ]
        r = StageResult(
            index=i,
            target_rps=rate,
            offered_rps=rate,
            achieved_rps=rate,
            dropped=0,
            p50_ms=10 + i,
            p95_ms=20 + 2 * i,
            p99_ms=30 + 3 * i,
            error_ratio=0.0,
            verdict=verdict,
            metrics={"cpu_pct": 2.0 * i},
            started_at=start,
        )
        store.write_stage(r, secs)
        results.append(r)
    store.write_summary(
        RunSummary(
            run_id=store.run_id,
            results_dir=str(store.path),
            experiment="bench-report",
            target="http://127.0.0.1:9",
            slo_capacity_rps=10.0 * (stages - 1),
            capacity_interval=[10.0 * (stages - 1.5), 10.0 * (stages - 0.5)],
            stopped_reason="guard:p95",
            stages=results,
        )
    )
    return store.path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--stages", type=int, default=30)
    ap.add_argument("--stage-seconds", type=int, default=300)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        run = build(Path(tmp), args.stages, args.stage_seconds)
        write_report(run)  # warm imports (matplotlib) outside the timings
        load_t, report_t = [], []
        for _ in range(args.repeat):
            t = time.perf_counter()
            load_run(run)
            load_t.append(time.perf_counter() - t)
            t = time.perf_counter()
            html = write_report(run)
            report_t.append(time.perf_counter() - t)
        lb, rb = min(load_t), min(report_t)
        print(f"run: {args.stages} stages x {args.stage_seconds} s = {args.stages * args.stage_seconds} seconds")
        print(f"load_run (baseline):   {lb * 1000:8.1f} ms")
        print(f"write_report:          {rb * 1000:8.1f} ms   ({rb / lb:.1f}x load_run)")
        print(f"report.html size:      {html.stat().st_size / 1024:8.1f} KiB (5 inline PNGs)")


if __name__ == "__main__":
    main()
