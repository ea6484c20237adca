"""``capacity search``: the main job, from an experiment file, the built-in sandbox, or flags alone."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console

from capacity.cli import flags
from capacity.cli.common import Commands
from capacity.core.errors import ExperimentError
from capacity.core.outcomes import StopReason
from capacity.plan.experiment import (
    Arrival,
    Endpoint,
    Experiment,
    MetricsSource,
    Strategy,
    default_experiment_path,
    load_experiment,
    parse_experiment,
)

if TYPE_CHECKING:
    from capacity.search import SearchOptions

SEARCH_HELP = """Raise the arrival rate in stages until the target's edge shows, then analyse and size.

With no EXPERIMENT file it runs the built-in sandbox experiment end to end (starting and stopping
the sandbox itself). Flags override the file; with --target and --endpoint no file is needed.

Examples:

  capacity search

  capacity search experiments/clinician-workflow-staging.toml --dry-run

  capacity search --target http://127.0.0.1:8080 --endpoint "GET /health" --endpoint "POST /p 0.2"
      --slo-p95-ms 500 --max-rps 400 --stage-seconds 20 --metrics none

  capacity search experiments/sandbox.toml --json > summary.json
"""


STAGE_FLAGS = (
    "strategy",
    "start_rps",
    "max_rps",
    "step_rps",
    "growth",
    "resolution",
    "stage_seconds",
    "warmup_seconds",
    "max_stages",
    "arrival",
)
"""``search`` flags that override ``[stages]`` keys of the same name (plus ``--max-duration``)."""
GUARD_FLAGS = ("slo_p95_ms", "slo_p99_ms", "max_error_ratio")
"""``search`` flags that override ``[guards]`` keys of the same name."""


def parse_endpoint(spec: str) -> dict[str, Any]:
    """``"METHOD PATH [WEIGHT]"`` -> endpoint table; a bad spec names the flag and the value."""
    parts = spec.split()
    if len(parts) not in (2, 3):
        raise ExperimentError(f'--endpoint {spec!r}: expected "METHOD PATH [WEIGHT]"')
    method, path = parts[0].upper(), parts[1]
    entry: dict[str, Any] = {"name": f"{method.lower()} {path}", "method": method, "path": path}
    if len(parts) == 3:
        try:
            entry["weight"] = float(parts[2])
        except ValueError:
            raise ExperimentError(f"--endpoint {spec!r}: weight {parts[2]!r} is not a number") from None
    return entry


def build_experiment(
    file: Path | None,
    *,
    target: str | None,
    endpoints: list[str],
    overrides: dict[str, dict[str, Any]],
) -> Experiment:
    """The experiment as it will run: the file (or sandbox default, or flags only) plus overrides."""
    if file is None and target is not None:
        if not endpoints:
            raise ExperimentError('--target needs at least one --endpoint "METHOD PATH [WEIGHT]"')
        from urllib.parse import urlsplit

        host = urlsplit(target).hostname or ""
        data: dict[str, Any] = {
            "name": "ad-hoc",
            "target": {"base_url": target, "allowed_hosts": [host] if host else []},
            "workload": {
                "endpoints": [parse_endpoint(e) for e in endpoints],
                "test_data": {"source": "sandbox"},
            },
            "metrics": {"source": "none"},
        }
        exp = parse_experiment(data, source="command line")
    else:
        exp = load_experiment(file if file is not None else default_experiment_path())
        if target is not None:
            overrides.setdefault("target", {})["base_url"] = target
        if endpoints:  # the file's flows (and the scenarios naming them) describe endpoints no longer run
            overrides["workload"] = {
                **exp.workload.model_dump(),
                "endpoints": [parse_endpoint(e) for e in endpoints],
                "flows": [],
            }
            if any(sc.flows for sc in exp.production.scenarios):
                kept = [sc.model_dump() for sc in exp.production.scenarios if not sc.flows]
                overrides["production"] = {"scenarios": kept}
    clean = {k: {kk: vv for kk, vv in v.items() if vv is not None} for k, v in overrides.items()}
    clean = {k: v for k, v in clean.items() if v}
    return exp.with_changes(label="command-line flags", **clean) if clean else exp


commands = Commands()


@commands.command("search", help=SEARCH_HELP)
def search(
    experiment: Path | None = flags.experiment_file(),
    target: str | None = typer.Option(None, "--target", help="Base URL of the target (overrides the file)."),
    endpoint: list[str] = typer.Option([], "--endpoint", help='Request kind "METHOD PATH [WEIGHT]"; repeatable.'),
    strategy: str | None = typer.Option(None, help="adaptive | linear | geometric."),
    slo_p95_ms: float | None = typer.Option(None, help="p95 latency SLO in ms."),
    slo_p99_ms: float | None = typer.Option(None, help="p99 latency SLO in ms."),
    max_error_ratio: float | None = typer.Option(None, help="Highest tolerated error ratio (0..1)."),
    start_rps: float | None = typer.Option(None, help="First stage's arrival rate (req/s)."),
    max_rps: float | None = typer.Option(None, help="Never offer more than this (req/s)."),
    step_rps: float | None = typer.Option(None, help="Linear step between stages (req/s)."),
    growth: float | None = typer.Option(None, help="Geometric/adaptive ramp factor (>1)."),
    resolution: float | None = typer.Option(None, help="Adaptive: stop bisecting below this relative gap."),
    stage_seconds: float | None = typer.Option(None, help="Stage length in seconds, warm-up included."),
    warmup_seconds: float | None = typer.Option(None, help="Warm-up excluded from each stage's statistics."),
    max_stages: int | None = typer.Option(None, help="Stage budget."),
    max_duration: float | None = typer.Option(None, "--max-duration", help="Run time budget in seconds."),
    arrival: str | None = typer.Option(None, help="uniform | poisson arrivals."),
    max_inflight: int | None = typer.Option(None, help="Cap on requests in flight (default: sized from rate and SLO)."),
    metrics: str | None = typer.Option(None, "--metrics", help="none | datadog."),
    require_metrics: bool = typer.Option(
        False, "--require-metrics", help="Exit 2 before stage 1 when a guard's query returns no series (blind)."
    ),
    out: Path = flags.results_root(),
    json_out: bool = flags.json_only("the run summary JSON"),
    workers: int = flags.local_workers(),
    expect_workers: int = typer.Option(
        0, "--expect-workers", min=0, help="Remote workers (capacity worker --master HOST) to wait for."
    ),
    master_bind: str = typer.Option("127.0.0.1", help="Address the Locust master listens on for workers."),
    allow_cleartext_workers: bool = typer.Option(
        False, "--allow-cleartext-workers", help="Confirm a wide --master-bind: token, headers, records go in clear."
    ),
    master_port: int = typer.Option(0, help="Port the Locust master listens on (0: free port)."),
    locustfile: str | None = typer.Option(
        None, "--locustfile", help="Existing locustfile: each arrival runs one task."
    ),
    allow_host: list[str] = flags.allow_hosts(),
    dry_run: bool = typer.Option(
        False, "--dry-run", help="Print the plan (stages, max rate, worst-case time); send nothing."
    ),
    no_report: bool = flags.no_report(),
    strict_limits: bool = typer.Option(
        False, "--strict-limits", help="Exit 1 when the recommended size exceeds a [production.limits] entry."
    ),
) -> None:
    given = dict(locals())  # the flags named like their experiment-file keys, for the overrides below
    flags.one_of("--strategy", strategy, Strategy)
    flags.one_of("--metrics", metrics, MetricsSource)
    flags.one_of("--arrival", arrival, Arrival)
    exp = build_experiment(
        experiment,
        target=target,
        endpoints=endpoint,
        overrides={
            "stages": {**{k: given[k] for k in STAGE_FLAGS}, "max_duration_s": max_duration},
            "guards": {k: given[k] for k in GUARD_FLAGS},
            "metrics": {"source": metrics},
        },
    )
    if dry_run:
        _print_plan(exp, json_out)
        return
    _run(exp, _options(given), strict_limits=strict_limits)


def _options(given: dict[str, Any]) -> SearchOptions:
    """The run's options from the search command's flags (those with no experiment-file key)."""
    from capacity.search import SearchOptions

    locustfile = given["locustfile"]
    return SearchOptions(
        results_root=given["out"],
        json_mode=given["json_out"],
        workers=given["workers"],
        expect_remote_workers=given["expect_workers"],
        master_bind=given["master_bind"],
        allow_cleartext_workers=given["allow_cleartext_workers"],
        master_port=given["master_port"],
        allow_hosts=tuple(given["allow_host"]),
        locustfile=str(Path(locustfile).resolve()) if locustfile else None,  # a path typed here is from the cwd
        max_inflight=given["max_inflight"],
        write_report=not given["no_report"],
        require_metrics=given["require_metrics"],
        command=flags.command_line(),
    )


def _run(exp: Experiment, options: SearchOptions, *, strict_limits: bool = False) -> None:
    """Run the search; with ``--json`` the summary is the only stdout. Interrupted runs exit 130; with
    ``--strict-limits`` an exceeded production limit exits 1 (else it is a warning in the summary)."""
    from capacity.search.hold_tasks import run_held_search

    summary = run_held_search(exp, options, Console(stderr=True))
    if options.json_mode:
        sys.stdout.write(summary.model_dump_json(indent=2) + "\n")
        sys.stdout.flush()
    if summary.stopped_reason == StopReason.INTERRUPTED:
        raise typer.Exit(130)
    limits = (summary.recommendation or {}).get("limits") or []
    if strict_limits and any(not r.get("ok") for r in limits):
        raise typer.Exit(1)


def _print_plan(exp: Experiment, json_out: bool) -> None:
    from capacity.plan.budget import record_budget
    from capacity.plan.strategies import preview

    p = preview(exp.stages, recovery_s=0.0)
    budget = record_budget(exp)
    total_rpm = sum(e.rpm or 0.0 for e in exp.workload.endpoints)
    data = {
        "experiment": exp.name,
        "target": exp.target.base_url,
        "strategy": p.strategy,
        "ramp_rates": [round(r, 3) for r in p.ramp_rates],
        "max_rps": p.max_rps,
        "max_stages": p.max_stages,
        "stage_seconds": exp.stages.stage_seconds,
        "warmup_seconds": exp.stages.warmup_seconds,
        "worst_case_s": round(p.worst_case_s, 1),
        "endpoints": [
            {"name": e.name, "method": e.method, "path": e.path, "weight": e.share_weight, "rpm_1x": e.rpm}
            for e in exp.workload.endpoints
        ],
        "flows": [
            {"name": f.name, "per_hour": f.per_hour, "per_minute": f.per_minute, "mode": f.mode}
            for f in exp.workload.flows
        ],
        "paths": [{"path": p, "endpoints": n, "rpm_1x": r} for p, n, r in path_totals(exp.workload.endpoints)],
        "rps_1x": total_rpm / 60.0 if total_rpm else None,
        "test_data": {
            "consuming": budget.consuming,
            "needed": budget.needed,
            "available": budget.available,
            "fitting_max_rps": budget.fitting_max_rps,
        },
        "assumptions": _assumptions(exp),
        "guards": exp.guards.model_dump(),
        "task_count_held": _held(exp),
    }
    if json_out:
        sys.stdout.write(json.dumps(data, indent=2) + "\n")
        return
    typer.echo(f"plan for {exp.name} -> {exp.target.base_url} (dry run: nothing is sent)")
    typer.echo(
        f"  strategy {p.strategy}; stages of {exp.stages.stage_seconds:g} s ({exp.stages.warmup_seconds:g} s warm-up)"
    )
    typer.echo("  ramp rates (req/s): " + ", ".join(f"{r:.1f}" for r in p.ramp_rates))
    if p.strategy == "adaptive":
        typer.echo(f"  then bisection to {exp.stages.resolution:.0%} resolution; never above the first failing rate")
    typer.echo(
        f"  max rate {p.max_rps:g} req/s; at most {p.max_stages} stages; worst case {p.worst_case_s:.0f} s "
        f"(+ recovery waits up to {exp.stages.recovery_timeout_s:g} s each)"
    )
    _print_profile(exp, total_rpm)
    typer.echo("  " + budget.text())
    for line in _assumptions(exp):
        typer.echo(f"  assumption: {line}")
    if data["task_count_held"]:
        typer.echo(f"  task count: {data['task_count_held']}")


def _held(exp: Experiment) -> str | None:
    """What the search does to the ECS service's task count (``capacity.search.hold_tasks``), if anything."""
    from capacity.search.hold_tasks import holds_task_count

    if not holds_task_count(exp):
        return None
    c = exp.cluster
    return (
        f"held at {c.app_tasks} app tasks on ECS service {c.ecs_cluster}/{c.ecs_service}: autoscaling suspended for "
        "the run, the count watched every stage (a change is 'invalid: task drift'), both restored afterwards"
    )


def _print_profile(exp: Experiment, total_rpm: float) -> None:
    """Each endpoint's requests/min at 1x (from the flows where it has no rpm of its own) beside the plan."""
    wl = exp.workload
    for f in wl.flows:
        steps = " + ".join(f"{s.count:g} {s.endpoint}" for s in f.steps)
        session = f.mode == "session" and not wl.locustfile
        how = "sessions" if session else "independent requests"
        think = f" (~{f.mean_think_s:.1f} s think per session)" if session and f.mean_think_s else ""
        typer.echo(f"  flow {f.name}: {f.per_hour:,.0f}/h = {f.per_minute:,.0f}/min {how}, each {steps}{think}")
        if session and f.mean_think_s >= exp.stages.warmup_seconds:
            typer.echo(
                f"    warning: its sessions think longer than the {exp.stages.warmup_seconds:g} s warm-up: "
                "the measured part starts before the request rate is steady"
            )
    if total_rpm:
        typer.echo(f"  1x profile: {total_rpm:,.0f} requests/min ({total_rpm / 60:.1f} req/s)")
    width = max((len(e.name) for e in wl.endpoints), default=0)
    for e in wl.endpoints:
        rate = f"{e.rpm:>8,.0f} /min at 1x" if e.rpm is not None else f"weight {e.share_weight:g}"
        mark = "  consumes a record" if e.consumes else ""
        typer.echo(f"    {e.name:<{width}}  {e.method:<6} {rate}{mark}")
    totals = path_totals(wl.endpoints)
    if any(len(names) > 1 for _, names, _ in totals):
        typer.echo("  per path (methods added up):")
        for path, names, rpm in totals:
            typer.echo(f"    {rpm:>8,.0f} /min at 1x  {path}  ({' + '.join(names)})")


def path_totals(endpoints: list[Endpoint]) -> list[tuple[str, list[str], float]]:
    """Requests/min at 1x per path (query string left out), the endpoints that share it, in file order."""
    out: dict[str, tuple[list[str], float]] = {}
    for e in endpoints:
        if e.rpm is None:
            continue
        path = e.path.split("?", 1)[0]
        names, rpm = out.get(path, ([], 0.0))
        out[path] = ([*names, e.name], rpm + e.rpm)
    return [(p, names, rpm) for p, (names, rpm) in out.items()]


def _assumptions(exp: Experiment) -> list[str]:
    """What the file marks as guessed (flows and endpoints), so it is confirmed before a real night."""
    wl = exp.workload
    return [f"flow {f.name}: {f.assumption}" for f in wl.flows if f.assumption] + [
        f"endpoint {e.name}: {e.assumption}" for e in wl.endpoints if e.assumption
    ]
