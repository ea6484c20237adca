"""``capacity metrics backfill|queries|check``: server-side metrics outside a search."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from capacity.cli.common import Commands, sub_app
from capacity.core.errors import CapacityError
from capacity.plan.experiment import Experiment

commands = Commands()
metrics_app = commands.group(
    sub_app(
        "metrics",
        (
            "Server-side metrics from Datadog: fill late ones into a run, show or check an experiment's queries.\n\n"
            "Keys come from DD_API_KEY / DD_APP_KEY; the site from DD_SITE or [metrics] site;\n"
            "CAPACITY_DATADOG_URL points at a Datadog-compatible endpoint instead.\n\n"
            "Examples:\n\n"
            "  capacity metrics backfill results/20261127T031500Z-staging-ab12\n\n"
            "  capacity metrics queries experiments/clinician-workflow-staging.toml\n\n"
            "  capacity metrics check experiments/clinician-workflow-staging.toml"
        ),
    )
)


@metrics_app.command(
    "backfill",
    help=(
        "Re-fetch the metrics of every stage whose window was incomplete (late CloudWatch data) and update\n"
        "the run's stored results (stage files, stages/metrics tables, summary).\n\n"
        "Examples:\n\n"
        "  capacity metrics backfill results/20261127T031500Z-staging-ab12\n\n"
        "  capacity metrics backfill results/20261127T031500Z-staging-ab12 --json"
    ),
)
def backfill(
    run_dir: Path = typer.Argument(..., help="A run folder (results/<run_id>).", show_default=False),
    force: bool = typer.Option(False, "--force", help="Re-fetch every stage, complete or not."),
    json_out: bool = typer.Option(False, "--json", help="Print the backfill report as JSON."),
) -> None:
    from capacity.search.backfill import backfill_run

    if not run_dir.is_dir():
        raise CapacityError(f"{run_dir}: no such run folder")
    report = backfill_run(run_dir, force=force)
    if json_out:
        typer.echo(json.dumps(report.as_dict(), indent=2))
        return
    if not report.checked:
        typer.echo(f"{run_dir}: every stage's metrics are complete; nothing to do")
        return
    for i in report.checked:
        state = "updated" if i in report.updated else "unchanged"
        typer.echo(f"stage {i}: completeness {report.before[i]:.0%} -> {report.after[i]:.0%} ({state})")
    for w in report.warnings:
        typer.echo(f"warning: {w}", err=True)
    typer.echo(f"{len(report.updated)} of {len(report.checked)} stage(s) updated in {report.calls} Datadog call(s)")


def _load(experiment: Path | None) -> Experiment:
    from capacity.plan.experiment import builtin_experiment_path, load_experiment

    return load_experiment(experiment if experiment is not None else builtin_experiment_path())


@metrics_app.command(
    "queries",
    help=(
        "Print the Datadog queries an experiment will run per stage (placeholders expanded, rollups added).\n\n"
        "Examples:\n\n"
        "  capacity metrics queries experiments/clinician-workflow-staging.toml"
    ),
)
def queries(
    experiment: Path = typer.Argument(
        None, help="Experiment file (default: the built-in sandbox).", show_default=False
    ),
    json_out: bool = typer.Option(False, "--json", help="Print name -> query as JSON."),
) -> None:
    from capacity.observe import resolve_queries

    exp = _load(experiment)
    resolved = resolve_queries(exp.metrics)
    if json_out:
        typer.echo(json.dumps(resolved, indent=2))
        return
    for name, q in resolved.items():
        typer.echo(f"{name:18} {q}")


@metrics_app.command(
    "check",
    help=(
        "Check the keys, the site and every query against Datadog with two cheap calls (what search does\n"
        "before stage 1). Exit 2 with one line naming the variable when a key is refused; exit 1 naming\n"
        "each query that returned no series over the last hour (a misspelt metric or tag: its guard is blind).\n\n"
        "Examples:\n\n"
        "  DD_SITE=ddog-gov.com capacity metrics check experiments/clinician-workflow-staging.toml"
    ),
)
def check(
    experiment: Path = typer.Argument(
        None, help="Experiment file (default: the built-in sandbox).", show_default=False
    ),
) -> None:
    from capacity.observe import build_source, resolve_queries
    from capacity.observe.source import resolve_host

    exp = _load(experiment)
    source = build_source(exp)
    if source is None:
        typer.echo("metrics.source is 'none': nothing to check")
        return
    try:
        source.preflight()
        empty = source.empty_queries()
    finally:
        source.close()
    resolved = resolve_queries(exp.metrics)
    _print_origins(resolved)
    if empty:
        for name in empty:
            typer.echo(f"no series: metrics.queries.{name} = {resolved[name]!r}", err=True)
        typer.echo(f"{len(empty)} of {len(resolved)} queries returned no series in the last hour", err=True)
        raise typer.Exit(1)
    typer.echo(f"ok: {resolve_host(exp)} accepted the keys and all {len(resolved)} queries returned series")


def _print_origins(resolved: dict[str, str]) -> None:
    """Per query: the metric, its agent integration, type and unit, or ``custom`` (someone must publish it)."""
    from capacity.observe.catalog import describe
    from capacity.observe.queries import metric_name

    for name, q in resolved.items():
        metric = metric_name(q)
        typer.echo(f"{name:18} {metric}: {describe(metric)}")
