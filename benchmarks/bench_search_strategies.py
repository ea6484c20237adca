"""Adaptive (ramp + bisect) vs fine linear search on sandboxes of known capacity, same resolution.

For each sandbox setting, both strategies run end to end (real sandbox, real driver, real guards)
and the table prints the capacity each found against the sandbox's formula and the wall time.
Goal (issue 6): both within 5% of the truth; adaptive wall time at most half of linear's.

    .venv/bin/python benchmarks/bench_search_strategies.py [--stage-seconds 6]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from rich.console import Console

from capacity.search import SearchOptions, run_search  # isort: skip  (first: Locust patches ssl)

from capacity.plan.experiment import builtin_experiment_path, load_experiment
from capacity.sandbox import SandboxConfig, truth

SETTINGS = [
    {"app_tasks": 1, "threads": 4, "service_ms": 40.0},  # 100/s
    {"app_tasks": 2, "threads": 4, "service_ms": 50.0},  # 160/s
    {"app_tasks": 2, "threads": 6, "service_ms": 50.0},  # 240/s
]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--stage-seconds", type=float, default=6.0)
    ap.add_argument("--resolution", type=float, default=0.05)
    args = ap.parse_args()
    base = load_experiment(builtin_experiment_path())
    root = Path(tempfile.mkdtemp(prefix="bench-search-"))
    rows = []
    for setting in SETTINGS:
        sb = base.sandbox.model_copy(update={**setting, "service_dist": "const"})
        t = truth(SandboxConfig.from_settings(sb)).pool_rps
        for strategy in ("adaptive", "linear"):
            stages = {
                "strategy": strategy,
                "start_rps": round(t * 0.25, 1),
                "max_rps": t * 3,
                "stage_seconds": args.stage_seconds,
                "warmup_seconds": 1.0,
                "resolution": args.resolution,
                "growth": 1.6,
                "step_rps": round(t * args.resolution, 2),
                "max_stages": 60,
                "max_duration_s": 1800.0,
                "recovery_timeout_s": 20.0,
            }
            exp = base.with_changes(
                sandbox=sb.model_dump(), stages=stages, guards={"slo_p95_ms": 200.0, "max_queue_latency_s": None}
            )
            t0 = time.monotonic()
            s = run_search(
                exp,
                options=SearchOptions(results_root=root, json_mode=True, write_report=False),
                console=Console(quiet=True),
            )
            wall = time.monotonic() - t0
            rows.append((setting, t, strategy, s.saturation_rps, s.slo_capacity_rps, len(s.stages), wall))
            print(
                f"{strategy:8s} truth {t:6.1f}/s  saturation {s.saturation_rps}  slo {s.slo_capacity_rps}  "
                f"stages {len(s.stages)}  wall {wall:.0f}s",
                flush=True,
            )
    print()
    print(
        f"{'truth/s':>8} {'strategy':>9} {'sat/s':>8} {'err':>7} {'slo cap/s':>9} "
        f"{'stages':>6} {'wall s':>7} {'ratio':>6}"
    )
    for i in range(0, len(rows), 2):
        a, lin = rows[i], rows[i + 1]
        for r in (a, lin):
            err = "-" if r[3] is None else f"{(r[3] - r[1]) / r[1]:+.1%}"
            ratio = f"{a[6] / lin[6]:.2f}" if r is a else ""
            sat = "-" if r[3] is None else f"{r[3]:.1f}"
            slo = "-" if r[4] is None else f"{r[4]:.1f}"
            print(f"{r[1]:8.1f} {r[2]:>9} {sat:>8} {err:>7} {slo:>9} {r[5]:6d} {r[6]:7.0f} {ratio:>6}")


if __name__ == "__main__":
    main()
