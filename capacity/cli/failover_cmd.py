"""``capacity failover``: hold the peak rate, lose an app task (or a zone's share), judge the rest."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.console import Console

from capacity.cli import flags
from capacity.cli.common import Commands, emit_json, run_dir_arg
from capacity.core.errors import ExperimentError
from capacity.plan.experiment import default_experiment_path, load_experiment

FAILOVER_HELP = """Hold an open-model rate, stop one app task (or 1/zones of them) mid-run, and judge the rest.

The rate is held like a soak (same guards, results folder, report, Ctrl-C). After a steady period the
run stops the tasks --lose allows (ECS StopTask; the built-in sandbox stops its own), times the
service's return to its desired count, and reports goodput, p95/p99, errors, dropped, per-task CPU
and pool, and the queue before, during and after. It restores nothing: the service replaces the
task. Exit 0 pass, 1 a guard broke (or the task did not come back), 2 bad input, 130 interrupted.

Examples:

  capacity failover --rps 90 --duration 2m --replacement-delay 10s

  capacity failover experiments/clinician-workflow-staging.toml --at recommended --from results/<run> --dry-run

  capacity failover FILE --rps 120 --from results/<run> --lose zone --duration 10m --json > failover.json
"""

commands = Commands()


def _plan_args(duration: str, loss_at: str | None, segment_seconds: float | None, deadline: str) -> dict[str, float]:
    from capacity.search.soak_plan import parse_duration

    total = parse_duration(duration)
    seg = segment_seconds if segment_seconds is not None else max(2.0, min(30.0, total / 10))
    at = parse_duration(loss_at, "--loss-at") if loss_at is not None else total / 3
    wait = parse_duration(deadline, "--deadline")
    return {"duration_s": total, "segment_s": seg, "loss_at_s": at, "deadline_s": wait}


def _capacity(run_dir: Path | None) -> tuple[float | None, str]:
    if run_dir is None:
        return None, ""
    from capacity.search.failover_plan import per_task_capacity
    from capacity.store import load_run

    run = load_run(run_dir)
    value, how = per_task_capacity(run.summary.model_dump(mode="json") if run.summary is not None else None)
    return value, f"{run.run_id}: {how}"


def _print_dry_run(plan: dict[str, Any]) -> None:
    p = plan["plan"]
    lines = [
        f"capacity failover {plan['experiment']} (dry run: nothing is sent, nothing is stopped)",
        f"rate: {p['why']} ({p['rate_rps']:.4g} req/s) for {p['duration_s']:g} s in {p['segment_s']:g}-s segments",
        f"loss at {p['loss_at_s']:g} s: --lose {p['lose']} stops {len(plan['would_stop'])} of "
        f"{plan['serving_tasks']} app tasks (allowed {plan['allowed']}, zones {plan['zones']}):",
        *(f"  {t['task']}" + (f" (zone {t['zone']})" if t["zone"] else "") for t in plan["would_stop"]),
        f"replacement deadline: {p['deadline_s']:g} s after the loss",
        f"worst case: {plan['worst_case_s']:g} s of load",
        f"{'AWS' if plan['control'] == 'ecs' else 'sandbox'} calls:",
        *(f"  {c}" for c in plan["calls"]),
        f"restores: {plan['restores']}",
    ]
    typer.echo("\n".join(lines))


@commands.command("failover", help=FAILOVER_HELP)
def failover(
    experiment: Path | None = flags.experiment_file(),
    rps: float | None = typer.Option(None, "--rps", help="Arrival rate to hold (req/s)."),
    at: str | None = typer.Option(None, "--at", help="recommended (with --from RUN) or a profile multiple: 1x."),
    from_run: str | None = typer.Option(None, "--from", help="Run folder or id: --at recommended, per-task capacity."),
    lose: str = typer.Option("1", "--lose", help="1 (one app task) or zone (1/zones of them, [production] zones)."),
    duration: str = typer.Option("10m", "--duration", help="How long to hold the rate: 90s, 10m."),
    loss_at: str | None = typer.Option(None, "--loss-at", help="When to stop the task(s) (default: a third in)."),
    segment_seconds: float | None = typer.Option(None, "--segment-seconds", help="Stored segment length (s)."),
    deadline: str = typer.Option("5m", "--deadline", help="How long the service may take to be whole again."),
    replacement_delay: str | None = typer.Option(
        None, "--replacement-delay", help="Built-in sandbox: how long its stopped task takes to come back."
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the tasks, calls and worst case; stop nothing."),
    out: Path = flags.results_root(),
    json_out: bool = flags.json_only("the failover object"),
    workers: int = flags.local_workers(),
    allow_host: list[str] = flags.allow_hosts(),
    no_report: bool = flags.no_report(),
) -> None:
    from capacity.search.failover_plan import FailoverPlan, parse_lose
    from capacity.search.failover_run import control_for, dry_run_plan, run_failover
    from capacity.search.soak_plan import parse_duration, soak_rate

    mode = parse_lose(lose)
    times = _plan_args(duration, loss_at, segment_seconds, deadline)
    delay = parse_duration(replacement_delay, "--replacement-delay") if replacement_delay is not None else None
    exp = load_experiment(experiment if experiment is not None else default_experiment_path())
    exp = exp.with_changes(label="capacity failover", soak={"shape": "flat"})
    run_dir = run_dir_arg(from_run, out, "--from") if from_run is not None else None
    if at is not None and at != "recommended" and run_dir is not None:
        raise ExperimentError("--from goes with --at recommended or --rps (for the per-task capacity)")
    rate, why = soak_rate(exp, rps=rps, at=at, from_run=run_dir if at == "recommended" else None)
    assert rate is not None
    capacity, source = _capacity(run_dir)
    plan = FailoverPlan(
        rate, why, lose=mode, replace_after_s=delay, per_task_capacity_rps=capacity, per_task_source=source, **times
    )
    control = control_for(exp, plan)
    if dry_run:
        shown = dry_run_plan(exp, plan, control)
        emit_json(shown) if json_out else _print_dry_run(shown)
        raise typer.Exit(0)
    options = flags.held_run_options(
        out, json_out=json_out, workers=workers, allow_host=allow_host, no_report=no_report
    )
    outcome = run_failover(exp, plan, options=options, console=Console(stderr=True), control=control)
    if json_out:
        emit_json(outcome.contract())
    raise typer.Exit(outcome.exit_code)
