"""Honest numbers at the edge (issue 13): do the estimates of overload runs satisfy every invariant?

Two sources of overload runs:

- synthetic M/M/c runs (``capacity.testing``) drawn to stress the edge: ramp and adaptive plans,
  failing stages aborted (often inside their warm-up) with unfinished requests and censored
  percentiles, goodput sagging under overload. Each is analysed as ``capacity analyze`` would and
  checked with ``capacity.analyze.consistency.violations`` (SLO capacity and knee at most the lowest
  failing rate; saturation at most the most goodput seen unless a named model extrapolates it;
  figures not reached inside the measured range; intervals containing their point);
- with ``--sandbox K``, K real searches against the built-in sandbox with a deep backlog at about
  1.3x its capacity and a warm-up longer than the guard window (the issue's setting), checked the
  same way, plus each stage failed on p95 against the p95 of the window that failed it (the stage's
  p95 must not be lower).

Prints the share of runs whose estimates satisfy every invariant (goal: all), the runs whose
estimates contradict each other (warned, never silent), and the p95 comparison.

    .venv/bin/python benchmarks/bench_edge.py [--runs 1000] [--boot 20] [--seed 0] [--sandbox 0]
"""

from __future__ import annotations

from capacity.load.patching import patch_gevent

patch_gevent()  # first: Locust patches ssl (the --sandbox searches drive real load)

import argparse  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections import Counter  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from capacity.analyze import RunAnalysis, analyse_run  # noqa: E402
from capacity.analyze.consistency import data_bounds, violations  # noqa: E402
from capacity.analyze.table import normalise_stages  # noqa: E402
from capacity.core.models import Estimate  # noqa: E402
from capacity.plan.experiment import Guards  # noqa: E402
from capacity.testing import SyntheticSpec, random_spec, synthetic_run  # noqa: E402


def edge_spec(rng: np.random.Generator, seed: int) -> SyntheticSpec:
    """``random_spec`` pushed to the edge: aborts (in the warm-up half the time) and sagging overload."""
    base = random_spec(rng, seed, adaptive=bool(rng.random() < 0.5))
    return SyntheticSpec(
        **{
            **base.__dict__,
            "abort_failing": bool(rng.random() < 0.7),
            "abort_in_warmup": bool(rng.random() < 0.5),
            "abort_s": int(rng.integers(1, 5)),
            "degrade": float(rng.choice([0.0, 0.1, 0.3, 0.6])),
            "extra_stages_after_fail": int(rng.integers(0, 4)),
        }
    )


def estimates(a: RunAnalysis) -> dict[str, Estimate]:
    out = {"saturation": a.saturation, "saturation_best": a.best_saturation, "slo_capacity": a.slo_capacity}
    out["knee"] = a.knee
    out.update({f"knee_{k}": e for k, e in a.knees.items()})
    if a.queueing is not None:
        out["queueing"] = a.queueing
    return out


def check(
    stages: pd.DataFrame, seconds: pd.DataFrame | None, guards: Guards | None, boot: int
) -> tuple[list[str], list[str]]:
    """(violations, warnings) of one run's analysis."""
    a = analyse_run(stages, seconds, guards, n_boot=boot)
    if a.status == "insufficient data":
        return [], []
    return violations(estimates(a), data_bounds(normalise_stages(stages), guards)), a.warnings


def synthetic(runs: int, boot: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    broken: Counter[str] = Counter()
    ok = warned = aborted = censored = 0
    t0 = time.perf_counter()
    for i in range(runs):
        spec = edge_spec(rng, seed * 1_000_000 + i)
        stages, seconds = synthetic_run(spec)
        aborted += int(stages.get("aborted_early", pd.Series(dtype=bool)).astype(bool).any())
        censored += int(stages.get("percentiles_censored", pd.Series(dtype=bool)).astype(bool).any())
        found, warnings = check(stages, seconds, Guards(slo_p95_ms=spec.slo_p95_ms), boot)  # type: ignore[call-arg]
        ok += not found
        warned += bool(warnings)
        broken.update(v.split(":")[0] for v in found)
    took = time.perf_counter() - t0
    print(f"synthetic overload runs: {runs} ({aborted} with aborted stages, {censored} with censored percentiles)")
    print(f"  estimates satisfying every invariant: {ok}/{runs} = {ok / runs:.1%} (goal: all)")
    print(f"  runs whose estimates contradict each other, warned: {warned}/{runs}")
    for name, n in broken.most_common():
        print(f"  broken: {name} in {n} run(s)")
    print(f"  {took:.1f} s ({1000 * took / runs:.0f} ms per run, --boot {boot})")


def sandbox(k: int, boot: int) -> None:
    """K real searches at the edge: invariants, and each p95-failed stage's p95 against its failing window."""
    from rich.console import Console

    from capacity import notebook
    from capacity.plan.experiment import builtin_experiment_path, load_experiment
    from capacity.search import SearchOptions, run_search

    ok, rows = 0, []
    for i in range(k):
        arrival = ("poisson", "uniform")[i % 2]
        exp = load_experiment(builtin_experiment_path()).with_changes(
            sandbox={"backlog": 4000, "service_dist": "exp"},
            stages={
                "strategy": "adaptive",
                "start_rps": 100.0,
                "growth": 1.45,
                "resolution": 0.1,
                "max_rps": 400.0,
                "stage_seconds": 8.0,
                "warmup_seconds": 5.0,
                "arrival": arrival,
                "max_inflight": 3000,
                "seed": i,
            },
            guards={"slo_p95_ms": 250.0, "window_seconds": 3},
            metrics={"source": "none"},
        )
        with tempfile.TemporaryDirectory() as root:
            summary = run_search(
                exp,
                options=SearchOptions(results_root=Path(root), json_mode=True, write_report=False),
                console=Console(quiet=True),
            )
            run = notebook.load(summary.results_dir)
            found, _ = check(run.stages, run.seconds, exp.guards, boot)
            ok += not found
            for st in summary.stages:
                window_p95 = [
                    b.value for b in st.breaches if b.code == "p95" and b.window != "stage" and b.value is not None
                ]
                if st.verdict == "fail" and window_p95:
                    rows.append((i, st.index, st.target_rps, st.p95_ms, max(window_p95), st.percentiles_censored))
        verdict = "; ".join(found) or "hold"
        print(f"  sandbox search {i} ({arrival}): {len(summary.stages)} stages, invariants {verdict}")
    print(f"sandbox searches: estimates satisfying every invariant: {ok}/{k}")
    print("  stage failed on p95: stage p95 vs the failing window's p95 (ms)")
    for run_i, index, target, p95, window, cens in rows:
        mark = "ok" if p95 is not None and p95 >= window else "LOWER"
        bound = " (lower bound)" if cens else ""
        print(f"  run {run_i} stage {index} at {target:.1f}/s: stage {p95:.1f}{bound} vs window {window:.1f}  {mark}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--boot", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--sandbox", type=int, default=0, help="Real sandbox searches to run too (about 2 min each).")
    args = parser.parse_args()
    synthetic(args.runs, args.boot, args.seed)
    if args.sandbox:
        sandbox(args.sandbox, args.boot)


if __name__ == "__main__":
    main()
