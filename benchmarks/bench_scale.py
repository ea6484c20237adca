"""A three-size ``capacity scale`` run on the scaling sandbox, and linear vs curve sizing against the truth.

The sandbox's capacity is the USL by formula (sigma 0.25, kappa 0.08, lambda 100 req/s per task;
``capacity sandbox --explain``). The series runs at 1, 2 and 4 app tasks (each size starts its own
sandbox); the script prints its wall time, each size's measured capacity against the truth, the
fitted parameters against the true ones, and for a range of production needs the app task count
from the line (per-task capacity at the staging size), from the fitted curve and from the truth.

    .venv/bin/python benchmarks/bench_scale.py [--stage-seconds 4]
"""

from __future__ import annotations

from capacity.load.patching import patch_gevent

patch_gevent()  # first: Locust patches ssl

import argparse  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

from rich.console import Console  # noqa: E402

from capacity.plan.experiment import Production, builtin_experiment_path, load_experiment  # noqa: E402
from capacity.sandbox import SandboxConfig, truth  # noqa: E402
from capacity.search import SearchOptions  # noqa: E402
from capacity.search.scale import ScaleOptions, run_scale  # noqa: E402
from capacity.size.curve import curve_tasks  # noqa: E402

SANDBOX = {
    "threads": 4,
    "service_ms": 40.0,
    "service_dist": "const",
    "cpu_ms": 0.3,
    "contention_sigma": 0.25,
    "crosstalk_kappa": 0.08,
}
NEEDS = (90.0, 120.0, 135.0, 145.0, 150.0, 160.0)
"""Production needs (req/s of SLO capacity: demand x (1 + throughput headroom)) to size for."""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--stage-seconds", type=float, default=4.0)
    ap.add_argument("--staging-tasks", type=int, default=1, help="The size the linear answer is taken from.")
    args = ap.parse_args()
    base = load_experiment(builtin_experiment_path())
    exp = base.with_changes(
        sandbox=SANDBOX,
        cluster={"app_tasks": args.staging_tasks},
        stages={
            "strategy": "adaptive",  # bisects to 2%: X(N) is each size's SLO capacity
            "resolution": 0.02,
            "max_stages": 12,
            "start_rps": 60.0,
            "growth": 1.3,
            "max_rps": 400.0,
            "stage_seconds": args.stage_seconds,
            "warmup_seconds": 1.0,
            "recovery_timeout_s": 10.0,
        },
        guards={"slo_p95_ms": 200.0},
    )
    root = Path(tempfile.mkdtemp(prefix="bench-scale-"))
    search = SearchOptions(results_root=root, json_mode=True, write_report=False)
    started = time.monotonic()
    out = run_scale(exp, ScaleOptions(sizes=[1, 2, 4], search=search), console=Console(quiet=True))
    elapsed = time.monotonic() - started
    t = truth(SandboxConfig(**SANDBOX))
    print(f"three-size scale run (1, 2, 4 app tasks; {args.stage_seconds:g} s stages): {elapsed:.1f} s wall")
    print(f"{'tasks':>5}  {'measured':>9}  {'interval':>16}  {'truth':>7}  {'error':>6}")
    for s in out.sizes:
        x, (lo, hi), true = s.capacity_rps or 0.0, s.capacity_interval, t.rps_at(s.app_tasks)
        iv = f"[{lo:.1f}, {hi:.1f}]" if lo is not None and hi is not None else "-"
        print(f"{s.app_tasks:>5}  {x:>9.1f}  {iv:>16}  {true:>7.1f}  {(x - true) / true:>+6.1%}")
    fit = out.fit
    assert fit is not None
    usl = t.usl()
    for name, got, true in (("sigma", fit.sigma, usl["sigma"]), ("kappa", fit.kappa, usl["kappa"])):
        lo, hi = fit.intervals.get(name, (float("nan"), float("nan")))
        print(f"{name}: fitted {got:.4f} [{lo:.4f}, {hi:.4f}]  truth {true:.4f}  error {(got - true) / true:+.1%}")
    print(f"lambda: fitted {fit.lam:.2f}  truth {usl['lambda']:.2f}")
    prod = Production(zones=1, n_plus_one=False, min_tasks=1, throughput_headroom=0.0)
    base_size = min(out.sizes, key=lambda s: abs(s.app_tasks - args.staging_tasks))
    per_task = (base_size.capacity_rps or 0.0) / base_size.app_tasks
    print(f"\nproduction app tasks (line: {per_task:.1f} req/s per task from {base_size.app_tasks} task(s))")
    print(f"{'need req/s':>10}  {'truth':>6}  {'curve':>6}  {'linear':>6}  linear carries (truth)")
    wrong_linear = wrong_curve = 0
    for need in NEEDS:
        _, true_n, _ = curve_tasks(t.rps_at, usl["peak_tasks"], need, prod)
        _, curve_n, _ = curve_tasks(fit.rps_at, fit.peak_tasks, need, prod)
        linear_n = max(1, -int(-need // per_task))
        carries = t.rps_at(linear_n)
        wrong_linear += linear_n != true_n
        wrong_curve += curve_n != true_n
        print(
            f"{need:>10.0f}  {_n(true_n):>6}  {_n(curve_n):>6}  {linear_n:>6}  {carries:.1f}"
            + ("  (short)" if carries < need else "")
        )
    print(f"answers off the truth's: linear {wrong_linear}/{len(NEEDS)}, curve {wrong_curve}/{len(NEEDS)}")
    print(f"\n{'tasks':>5}  {'truth':>7}  {'curve':>7}  {'error':>6}  {'linear':>7}  {'error':>7}  (capacity, req/s)")
    for n in (3, 6, 8):
        true, curve, line = t.rps_at(n), fit.rps_at(n), per_task * n
        errors = f"{(curve - true) / true:>+6.1%}  {line:>7.1f}  {(line - true) / true:>+7.1%}"
        print(f"{n:>5}  {true:>7.1f}  {curve:>7.1f}  {errors}")


def _n(value: int | None) -> str:
    return "refused" if value is None else str(value)


if __name__ == "__main__":
    main()
