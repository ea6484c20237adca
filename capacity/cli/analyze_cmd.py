"""``capacity analyze`` (alias ``analyse``) and ``capacity size``: estimates and a production size.

PATH is a run folder (``results/<run_id>``), a CSV stage table, or (for ``analyze``) a scaling table
for a USL fit. Results of a run folder are written beside it as ``analysis.json``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
import typer

from capacity.analyze.table import STAGE_COLUMNS_HELP
from capacity.cli.common import Commands
from capacity.core.errors import CapacityError
from capacity.core.models import Estimate
from capacity.plan.experiment import Cluster, Experiment, Guards, Production, Workload
from capacity.report.estimate_text import format_estimate

if TYPE_CHECKING:
    from capacity.analyze import RunAnalysis

ANALYZE_HELP = f"""Estimate saturation, SLO capacity and the knee (with intervals) from a run or a CSV.

PATH is a run folder, a CSV stage table, or a scaling table. Stage CSV columns: {STAGE_COLUMNS_HELP}.
A scaling table has 'nodes' or 'concurrency' and 'throughput' and gets a 3-parameter USL fit.
For a run folder the result is also written to PATH/analysis.json.

Examples:

  capacity analyze results/20261127T031500Z-sandbox-ab12

  capacity analyze stages.csv --json

  capacity analyze scaling.csv          # columns: nodes,throughput
"""

SIZE_HELP = """Recommend production app and Sidekiq tasks from a run (or a CSV stage table).

demand = peak x (1 + unmodelled share) x growth; per-task capacity = SLO capacity / staging app
tasks; tasks = the larger of demand x (1 + throughput headroom) / per-task capacity and demand /
the per-task rate at which CPU reaches the CPU target, rounded up per availability zone, plus N+1
(one spare task) unless disabled. The output shows the chain (each step with its source), the range
of the count over the capacity's interval and [production.limits] checked against the size (exit 1
on an exceeded limit only with --strict-limits). The peak defaults to the 1x profile
(production.peak_rpm, else the endpoints' rpm or flows); every [[production.scenarios]] is sized
too, from each endpoint's measured cost.

Examples:

  capacity size results/20261127T031500Z-sandbox-ab12

  capacity size stages.csv --app-tasks 2 --peak-rpm 9015 --cpu-target 0.6 --zones 3 --json

  capacity size results/<run> --experiment staging-with-limits.toml --strict-limits
"""


def _read_csv(path: Path) -> pd.DataFrame:
    try:
        return pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise CapacityError(
            f"{path}: not a readable CSV ({str(exc).splitlines()[0] if str(exc) else 'empty'})"
        ) from None


def _load(path: Path) -> tuple[pd.DataFrame, pd.DataFrame | None, Experiment | None, Any]:
    """(stages, seconds, experiment, run) from a run folder or a CSV."""
    if path.is_dir():
        from capacity.store import load_run

        run = load_run(path)
        for warning in run.warnings:  # damaged files read around (stdout stays the analysis alone)
            typer.echo(f"capacity: warning: {warning}", err=True)
        if run.stages.empty:
            raise CapacityError(f"{path}: the run has no finished stages")
        return run.stages, run.seconds, run.experiment, run
    if path.is_file():
        return _read_csv(path), None, None, None
    raise CapacityError(f"{path}: no such run folder or CSV file")


def _fmt(e: Estimate | None) -> str:
    return format_estimate(e, unit=" rps", signal=True, missing="—", why_missing=True)


def _print_analysis(a: RunAnalysis) -> None:
    typer.echo(f"status: {a.status}")
    typer.echo(f"saturation:    {_fmt(a.saturation)}")
    typer.echo(f"SLO capacity:  {_fmt(a.slo_capacity)}")
    typer.echo(f"knee:          {_fmt(a.knee)}")
    for name, e in a.knees.items():
        typer.echo(f"  knee {name:<14} {_fmt(e)}")
    if a.queueing is not None:
        typer.echo(f"queueing fit:  {_fmt(a.queueing)}  ({a.queueing.method})")
    for note in a.notes:
        typer.echo(f"note: {note}")
    for warning in a.warnings:
        typer.echo(f"warning: {warning}")


def _print_usl(d: dict[str, Any]) -> None:
    typer.echo(f"USL ({d['method']})")
    for k in ("sigma", "kappa", "lambda"):
        lo, hi = d["ci"][k]
        typer.echo(f"  {k:<7} {d[k]:.6g}  [{lo:.4g}, {hi:.4g}]")
    if d["n_peak"] is not None:
        typer.echo(f"  N_peak  {d['n_peak']:.4g}  X_max {d['x_max']:.6g}")
    else:
        typer.echo(f"  X_max  >= {d['x_max']:.6g} (lower bound)")
    for n in d["notes"]:
        typer.echo(f"  note: {n}")


def _emit_json(data: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


def _analyze(path: Path, json_out: bool, boot: int, seed: int) -> None:
    if path.is_file():
        frame = _read_csv(path)
        if {"throughput"} <= set(frame.columns) and ({"nodes", "concurrency"} & set(frame.columns)):
            from capacity.analyze import analyse_scaling

            usl = analyse_scaling(frame, source=str(path)).to_dict()
            if json_out:
                _emit_json({"usl": usl})
            else:
                _print_usl(usl)
            return
        stages, seconds, exp, run = frame, None, None, None  # a stage table, already read
    else:
        stages, seconds, exp, run = _load(path)
    guards: Guards | None = exp.guards if exp is not None else None
    try:
        from capacity.analyze import analyse_run

        analysis = analyse_run(stages, seconds, guards, n_boot=boot, seed=seed)
    except CapacityError as exc:
        raise CapacityError(f"{path}: {exc}" if str(path) not in str(exc) else str(exc)) from None
    data = analysis.to_dict()
    if run is not None:
        from capacity.store import RunStore

        RunStore.open(path).write_json("analysis.json", data)
    if json_out:
        _emit_json(data)
    else:
        _print_analysis(analysis)
        if run is not None:
            typer.echo(f"written: {path / 'analysis.json'}")


def analyze(
    path: Path = typer.Argument(..., help="Run folder, CSV stage table, or CSV scaling table."),
    json_out: bool = typer.Option(False, "--json", help="Print the analysis as JSON only."),
    boot: int = typer.Option(300, "--boot", min=0, max=5000, help="Bootstrap replicates for the intervals."),
    seed: int = typer.Option(0, "--seed", help="Bootstrap seed."),
) -> None:
    _analyze(path, json_out, boot, seed)


commands = Commands()


commands.command("analyze", help=ANALYZE_HELP)(analyze)
commands.command("analyse", help=ANALYZE_HELP, hidden=True)(analyze)  # British spelling, same command


@commands.command("size", help=SIZE_HELP)
def size(
    path: Path = typer.Argument(..., help="Run folder or CSV stage table."),
    peak_rpm: float | None = typer.Option(None, "--peak-rpm", min=0.001, help="Production peak, requests/min (total)."),
    target_util: float | None = typer.Option(
        None,
        "--cpu-target",
        "--target-util",
        min=0.01,
        max=1.0,
        help="CPU share per task at peak (default 0.6, the autoscaling point); --target-util is its old name.",
    ),
    headroom: float | None = typer.Option(
        None, "--throughput-headroom", min=0.0, max=10.0, help="Spare SLO capacity beyond demand (default 0.2)."
    ),
    strict_limits: bool = typer.Option(
        False, "--strict-limits", help="Exit 1 when the size exceeds a [production.limits] entry (else a warning)."
    ),
    experiment: Path | None = typer.Option(
        None, "--experiment", help="Size with this file's [cluster], [production] and workload instead of the run's."
    ),
    zones: int | None = typer.Option(
        None, "--zones", min=1, max=16, help="Availability zones (tasks per zone are whole)."
    ),
    growth: float | None = typer.Option(None, "--growth", min=1.0, help="Growth factor on the peak."),
    n_plus_one: bool | None = typer.Option(None, "--n-plus-one/--no-n-plus-one", help="Keep one spare task."),
    app_tasks: int | None = typer.Option(None, "--app-tasks", min=1, help="Staging app tasks measured (CSV input)."),
    sidekiq_tasks: int | None = typer.Option(None, "--sidekiq-tasks", min=0, help="Staging Sidekiq tasks measured."),
    scenario: str | None = typer.Option(None, "--scenario", help="Size for this scenario instead of the 1x peak."),
    signal: str | None = typer.Option(
        None, "--signal", help="saturation | slo_capacity | knee (default: SLO capacity)."
    ),
    json_out: bool = typer.Option(False, "--json", help="Print the recommendation as JSON only."),
    boot: int = typer.Option(100, "--boot", min=0, max=5000, help="Bootstrap replicates for the intervals."),
) -> None:
    from capacity.analyze import analyse_run
    from capacity.size import SizingAsk, recommend

    stages, seconds, exp, run = _load(path)
    analysis = analyse_run(stages, seconds, exp.guards if exp else None, n_boot=boot)
    if experiment is not None:
        from capacity.plan.experiment import load_experiment

        exp = load_experiment(experiment)
    cluster = exp.cluster if exp else Cluster()  # type: ignore[call-arg]
    production = exp.production if exp else Production()  # type: ignore[call-arg]
    workload: Workload | None = exp.workload if exp else None
    cluster_changes = {k: v for k, v in (("app_tasks", app_tasks), ("sidekiq_tasks", sidekiq_tasks)) if v is not None}
    if cluster_changes:
        cluster = cluster.model_copy(update=cluster_changes)
    prod_changes = {
        k: v
        for k, v in (
            ("cpu_target", target_util),
            ("throughput_headroom", headroom),
            ("zones", zones),
            ("growth", growth),
            ("n_plus_one", n_plus_one),
        )
        if v is not None
    }
    if prod_changes:
        production = production.model_copy(update=prod_changes)
    rec = recommend(
        analysis,
        stages,
        cluster,
        production,
        workload,
        ask=SizingAsk(scenario=scenario, peak_rps=peak_rpm / 60.0 if peak_rpm is not None else None, signal=signal),
        endpoints=run.endpoints if run is not None else None,
    )
    if json_out:
        _emit_json(rec.to_dict())
    else:
        _print_recommendation(rec)
    if strict_limits and any(not r["ok"] for r in rec.limits):
        raise typer.Exit(1)


def _print_recommendation(rec: Any) -> None:
    from capacity.report.content import chain_lines

    lo, hi = rec.app_tasks_range
    typer.echo(f"app tasks:      {rec.app_tasks} [{lo}-{hi}]  ({rec.binding_constraint})")
    typer.echo(f"sidekiq tasks:  {rec.sidekiq_tasks}  ({rec.figures.get('sidekiq_method')})")
    typer.echo(
        f"memory/task:    {rec.mem_mib_per_task if rec.mem_mib_per_task else '—'} MiB  "
        f"({rec.figures.get('memory_source')})"
    )
    typer.echo(
        f"at peak: {rec.expected_utilisation:.0%} of the SLO capacity per task "
        f"{rec.per_task_rps:.4g} rps; peak {rec.peak_rps:.4g} rps x (1 + unmodelled share "
        f"{rec.inputs.get('unmodelled_share', 0.0):g}) x growth {rec.inputs['growth']:g}"
    )
    typer.echo(f"endpoint cost:  {rec.figures.get('endpoint_cost_source', '')}")
    for name, sc in rec.scenarios.items():
        typer.echo(
            f"  {name:<36} {sc.get('rps', sc['peak_rps']):>8.4g} rps (costs {sc['peak_rps']:.4g}; demand "
            f"{sc.get('demand_rps', sc['peak_rps']):.4g}) -> {sc['app_tasks']} app, {sc['sidekiq_tasks']} sidekiq"
        )
    typer.echo("chain:")
    for line in chain_lines(rec.chain):
        typer.echo(f"  {line}")
    for r in rec.limits:
        typer.echo(f"limit {r['name']}: need {r['need']:g} of {r['limit']:g} {'ok' if r['ok'] else 'EXCEEDED'}")
    for note in rec.notes:
        typer.echo(f"note: {note}")
