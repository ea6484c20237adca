"""``capacity report``, ``capacity results list|compare`` and ``capacity nightly``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from capacity.cli.common import Commands, emit_json, run_dir_arg, sub_app
from capacity.core.errors import CapacityError
from capacity.report.estimate_text import format_estimate

commands = Commands()
results_app = commands.group(
    sub_app(
        "results",
        (
            "Look back over stored runs: list them, compare two.\n\n"
            "Examples:\n\n"
            "  capacity results list\n\n"
            "  capacity results list /data/results --json\n\n"
            "  capacity results compare results/RUN_A results/RUN_B --max-drop 10"
        ),
    )
)


# ------------------------------------------------------------------------------------------ report
@commands.command(
    "report",
    help=(
        "Write report.html (self-contained: plots inline, no network needed) and summary.md for a run.\n\n"
        "search writes the report itself; use this to redraw it (e.g. after 'capacity analyze').\n\n"
        "Examples:\n\n"
        "  capacity report results/20261127T031500Z-sandbox-ab12\n\n"
        "  capacity report results/20261127T031500Z-sandbox-ab12 --json"
    ),
)
def report(
    run_dir: Path = typer.Argument(..., help="A run folder (results/<run_id>).", show_default=False),
    json_out: bool = typer.Option(False, "--json", help="Print the written paths as JSON."),
) -> None:
    from capacity.report import write_run_report
    from capacity.store import load_run

    if not run_dir.is_dir():
        raise CapacityError(f"{run_dir}: no such run folder")
    run = load_run(run_dir)
    for warning in run.warnings:  # damaged files read around: said on stderr and in the report
        typer.echo(f"capacity: warning: {warning}", err=True)
    html = write_run_report(run)
    paths = {
        "report": str(html),
        "summary": str(html.parent / "summary.md"),
        "plots": str(html.parent / "plots"),
    }
    if json_out:
        emit_json(paths)
    else:
        typer.echo(f"report:  {paths['report']}\nsummary: {paths['summary']}")


# ------------------------------------------------------------------------------------ results list
@results_app.command(
    "list",
    help=(
        "One line per stored run, newest first: date, experiment, target, SLO capacity [interval],\n"
        "recommendation.\n\nExamples:\n\n  capacity results list\n\n  capacity results list results --json"
    ),
)
def results_list(
    root: Path = typer.Argument(Path("results"), help="Results root folder."),
    experiment: str | None = typer.Option(None, "--experiment", help="Only runs of this experiment."),
    json_out: bool = typer.Option(False, "--json", help="Print the rows as a JSON list."),
) -> None:
    from capacity.report.listing import capacity_text, run_row
    from capacity.store import list_runs

    if not root.is_dir():
        raise CapacityError(f"{root}: no such results folder")
    rows = [run_row(r) for r in list_runs(root)]
    if experiment is not None:
        rows = [r for r in rows if r["experiment"] == experiment]
    if json_out:
        emit_json(rows)
        return
    if not rows:
        typer.echo(f"no runs in {root}")
        _echo_series(root)
        return
    table = [
        (
            str(r["started_at"] or "")[:19].replace("T", " "),
            r["run_id"],
            str(r["experiment"]),
            str(r["target"] or ""),
            capacity_text(r),
            str(r["recommendation"] or "-"),
        )
        for r in rows
    ]
    headers = ("date (UTC)", "run", "experiment", "target", "SLO capacity req/s [interval]", "recommendation")
    widths = [max(len(h), *(len(row[i]) for row in table)) for i, h in enumerate(headers)]
    for line in (headers, *table):
        typer.echo("  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip())
    _echo_series(root)


def _echo_series(root: Path) -> None:
    """Scaling series (``capacity scale``) under ``root``, after the runs."""
    from capacity.report.listing import series_lines
    from capacity.store.scaling_series import list_series

    for line in series_lines(list_series(root)):
        typer.echo(line)


# --------------------------------------------------------------------------------- results compare
def print_comparison(comparison: Any) -> None:
    rows = [("figure (req/s)", "baseline", "candidate", "change", "intervals")]
    for f in comparison.figures:
        overlap = "-" if f.overlap is None else ("overlap" if f.overlap else "apart")
        change = "-" if f.change_pct is None else f"{f.change_pct:+.1f}%"
        rows.append((f.name, format_estimate(f.baseline), format_estimate(f.candidate), change, overlap))
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    typer.echo(f"baseline:  {comparison.baseline_id}\ncandidate: {comparison.candidate_id}")
    for r in rows:
        typer.echo("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
    for key, (a, b) in comparison.recommendation.items():
        typer.echo(f"recommendation {key}: {a} -> {b}")
    typer.echo(f"verdict: {comparison.verdict}: {comparison.reason}")


@results_app.command(
    "compare",
    help=(
        "Compare run B (candidate) with run A (baseline) on SLO capacity, with intervals.\n\n"
        "'regression' only when B is lower by more than --max-drop percent AND the intervals do not\n"
        "overlap; 'inconclusive' when either capacity is missing, not reached or from thin data.\n"
        "Exit codes: 0 ok or improvement, 1 regression, 2 error, 3 inconclusive.\n\n"
        "Examples:\n\n"
        "  capacity results compare results/RUN_A results/RUN_B\n\n"
        "  capacity results compare RUN_A RUN_B --max-drop 5 --json"
    ),
)
def results_compare(
    a: str = typer.Argument(..., help="Baseline run folder (or run id under --results).", show_default=False),
    b: str = typer.Argument(..., help="Candidate run folder (or run id under --results).", show_default=False),
    max_drop: float = typer.Option(10.0, "--max-drop", help="Drop (percent) beyond which a change counts."),
    results_root: Path = typer.Option(Path("results"), "--results", help="Results root for run ids."),
    json_out: bool = typer.Option(False, "--json", help="Print the comparison as JSON."),
) -> None:
    from capacity.report.compare import compare_runs
    from capacity.report.setting_effect import setting_effect
    from capacity.store import load_run

    if not 0 <= max_drop < 100:
        raise CapacityError(f"--max-drop {max_drop:g}: expected a percentage in [0, 100)")
    summaries, experiments = [], []
    for spec in (a, b):
        run = load_run(run_dir_arg(spec, results_root))
        if run.summary is None:
            raise CapacityError(f"{spec}: the run has no summary.json (it did not finish)")
        summaries.append(run.summary)
        experiments.append(run.manifest.get("experiment") or {})
    comparison = compare_runs(summaries[0], summaries[1], max_drop)
    effect = setting_effect(experiments[0], experiments[1], summaries[0], summaries[1])
    if json_out:
        emit_json({**comparison.to_dict(), "setting_effect": effect.to_dict() if effect is not None else None})
    else:
        print_comparison(comparison)
        if effect is not None:
            typer.echo(f"settings: {effect.text}")
    raise typer.Exit(comparison.exit_code)


# ----------------------------------------------------------------------------------------- nightly
@commands.command(
    "nightly",
    help=(
        "The scheduled regression gate: search, compare with a baseline run, write the report, post a\n"
        "Datadog event when DD_API_KEY and DD_APP_KEY are set.\n\n"
        "--baseline last (default) is the newest previous run of the same experiment under --results.\n"
        "Exit codes: 0 ok (or improvement), 1 regression, 2 error, 3 inconclusive (no baseline, or a\n"
        "capacity that was not determined). The comparison is also saved as comparison.json in the run.\n\n"
        "Examples:\n\n"
        "  capacity nightly                                   # built-in sandbox experiment\n\n"
        "  capacity nightly experiments/clinician-workflow-staging.toml --max-drop 10\n\n"
        "  capacity nightly experiments/sandbox.toml --baseline results/20261126T031500Z-sandbox-ab12 --json"
    ),
)
def nightly(
    experiment: Path | None = typer.Argument(
        None, help="Experiment TOML (default: the built-in sandbox).", show_default=False
    ),
    baseline: str = typer.Option("last", "--baseline", help="'last' or a run folder to compare with."),
    max_drop: float = typer.Option(10.0, "--max-drop", help="Drop (percent) beyond which a change counts."),
    results_root: Path = typer.Option(Path("results"), "--results", help="Results root folder."),
    json_out: bool = typer.Option(False, "--json", help="Print only the outcome JSON on stdout."),
) -> None:
    from capacity.plan.experiment import default_experiment_path, load_experiment
    from capacity.search.nightly import run_nightly

    exp = load_experiment(experiment if experiment is not None else default_experiment_path())
    outcome = run_nightly(exp, baseline=baseline, max_drop_pct=max_drop, results_root=results_root, json_mode=json_out)
    if json_out:
        emit_json(outcome.to_dict())
    else:
        if outcome.comparison is not None:
            print_comparison(outcome.comparison)
        else:
            typer.echo(f"verdict: {outcome.verdict}: {outcome.reason}")
        typer.echo(f"report: {outcome.report}" if outcome.report else f"run: {outcome.run_dir}")
        if outcome.event_id:
            typer.echo(f"datadog event: {outcome.event_id}")
    if outcome.event_error:
        typer.echo(f"capacity: warning: Datadog event not posted ({outcome.event_error})", err=True)
    raise typer.Exit(outcome.exit_code)
