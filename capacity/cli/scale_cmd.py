"""``capacity scale``: a search at each staging app task count, capacity fitted against tasks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.console import Console

from capacity.cli.common import Commands, emit_json
from capacity.core.errors import CapacityError
from capacity.core.outcomes import StopReason

SCALE_HELP = """Search at several staging app task counts and size production from the scaling curve.

For each size in --sizes it sets the app task count, waits until the cluster is steady and the
metrics show that many app tasks, and runs a full search; a stage during which the count drifts is
invalid. It then fits each size's SLO capacity against tasks (USL with 3+ sizes, linear with
contention with 2, the line with 1) and reads production's task count off the curve beside the
base size's own recommendation, with the same rules as `capacity search` (one size gives exactly
the search's answer). Exactly 3 sizes fit the USL exactly: the output says the fit cannot be
checked; with 4+ it prints each size predicted from the others (leave-one-out, error in %).
--repeat K searches each size K times so that run-to-run variance enters the fit's uncertainty.

With no EXPERIMENT it uses the built-in sandbox, whose task count it sets itself (no AWS). With
[cluster] ecs_cluster and ecs_service it sets the ECS service's desired count through the AWS API
(credentials the usual boto3 way), suspends its autoscaling for the run, and restores both after
success, failure, Ctrl-C or SIGTERM.

Examples:

  capacity scale --sizes 1,2,4

  capacity scale --sizes 1,2,3,4 --repeat 2

  capacity scale experiments/clinician-workflow-staging.toml --sizes 2,4,6 --dry-run

  capacity scale experiments/staging.toml --sizes 1,2,4 --json > scaling.json
"""

commands = Commands()


def parse_sizes(text: str) -> list[int]:
    try:
        sizes = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise CapacityError(f"--sizes {text!r}: expected app task counts like 1,2,4") from None
    return sizes


@commands.command("scale", help=SCALE_HELP)
def scale(
    experiment: Path | None = typer.Argument(None, help="Experiment TOML (default: the built-in sandbox)."),
    sizes: str = typer.Option("1,2,4", "--sizes", help="Staging app task counts to measure, e.g. 1,2,4."),
    json_out: bool = typer.Option(False, "--json", help="Print the scaling summary as JSON (the only stdout)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print sizes, worst-case time, AWS calls; send nothing."),
    out: Path = typer.Option(Path("results"), "--out", help="Results root folder."),
    no_report: bool = typer.Option(False, "--no-report", help="Skip each size's HTML report."),
    steady_timeout: float = typer.Option(900.0, "--steady-timeout", min=1.0, help="Seconds to wait for each size."),
    series_id: str | None = typer.Option(None, "--series-id", help="Name of the series folder under --out."),
    repeat: int = typer.Option(
        1, "--repeat", min=1, max=10, help="Searches per size: run-to-run variance enters the fit's uncertainty."
    ),
) -> None:
    from capacity.plan.experiment import default_experiment_path, load_experiment
    from capacity.search import SearchOptions
    from capacity.search.scale import ScaleOptions, dry_run_plan, run_scale

    exp = load_experiment(experiment if experiment is not None else default_experiment_path())
    size_list = parse_sizes(sizes)
    if dry_run:
        _print_plan(dry_run_plan(exp, size_list, steady_timeout_s=steady_timeout, repeat=repeat), json_out)
        return
    search = SearchOptions(results_root=out, json_mode=True, write_report=not no_report, command="capacity scale")
    options = ScaleOptions(
        sizes=size_list, search=search, series_id=series_id, steady_timeout_s=steady_timeout, repeat=repeat
    )
    outcome = run_scale(exp, options, console=Console(stderr=True, quiet=json_out))
    data = outcome.to_json()
    if json_out:
        emit_json(data)
    else:
        _print_outcome(data)
    if outcome.stopped_reason == StopReason.INTERRUPTED:
        raise typer.Exit(130)


def _print_plan(plan: dict[str, Any], json_out: bool) -> None:
    if json_out:
        emit_json(plan)
        return
    typer.echo(f"experiment {plan['experiment']}: sizes {', '.join(map(str, plan['sizes']))} ({plan['control']})")
    per = plan["worst_case_per_size_s"]
    typer.echo(
        f"worst case {plan['worst_case_s'] / 60:.1f} min ({per['search']:.0f} s search + {per['settle']:.0f} s "
        "settling per size)"
    )
    calls = plan["aws_calls"]
    typer.echo("AWS calls:" if calls else "AWS calls: none (the built-in sandbox sets its own task count)")
    for call in calls:
        typer.echo(f"  {call}")


def _print_outcome(data: dict[str, Any]) -> None:
    typer.echo(f"scaling series {data['series_id']} ({data['stopped_reason']}): {data['path']}")
    typer.echo(f"  {'tasks':>5}  {'SLO capacity':>12}  {'interval':>18}  {'saturation':>10}  run")
    for s in data["sizes"]:
        lo, hi = s["capacity_interval"]
        iv = f"[{lo:.1f}, {hi:.1f}]" if lo is not None and hi is not None else "-"
        cap = f"{s['capacity_rps']:.1f}" if s["capacity_rps"] is not None else "-"
        sat = f"{s['saturation_rps']:.1f}" if s["saturation_rps"] is not None else "-"
        flag = " (drifted)" if s["drifted"] else ("" if s["capacity_rps"] is not None else " (not reached)")
        typer.echo(f"  {s['app_tasks']:>5}  {cap:>12}  {iv:>18}  {sat:>10}  {s['run_id']}{flag}")
    fit = data["fit"]
    if fit:
        peak = f"{fit['peak_tasks']:.2f}" if fit["peak_tasks"] else "none"
        typer.echo(
            f"fit ({fit['model']}): sigma {fit['sigma']:.4g}, kappa {fit['kappa']:.4g}, "
            f"lambda {fit['lambda']:.4g} req/s, peak tasks {peak}"
        )
    for r in data.get("leave_one_out") or []:
        typer.echo(
            f"  leave-one-out: {r['app_tasks']} tasks measured {r['measured_rps']:.1f}, predicted from the others "
            f"{r['predicted_rps']:.1f} req/s ({r['error_pct']:+.1f}%)"
        )
    if data.get("fit_check"):
        typer.echo(f"fit check: {data['fit_check']}")
    rec = data["recommendation"]
    if rec:
        from capacity.report.content import chain_lines

        curve = rec["app_tasks_curve"] if rec["app_tasks_curve"] is not None else "refused"
        span = rec.get("app_tasks_range")
        typer.echo(
            f"production app tasks: {rec['app_tasks']} {list(span) if span else ''} (curve {curve}, linear "
            f"{rec['app_tasks_linear']}; binding: {rec['binding']}), {rec.get('sidekiq_tasks')} Sidekiq tasks"
        )
        for line in chain_lines(rec.get("chain") or []):
            typer.echo(f"  {line}")
        if rec["refused"]:
            typer.echo(f"  {rec['refused']}")
    shared = data.get("shared_resource")
    if shared:
        typer.echo(f"shared resource: {shared['resource']}: {shared['evidence']}")
    for w in data["warnings"]:
        typer.echo(f"warning: {w}")
