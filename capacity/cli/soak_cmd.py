"""``capacity soak``: hold a rate (or a burst shape around it) for a long time and fit the drift."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from capacity.cli import flags
from capacity.cli.common import Commands, emit_json, run_dir_arg
from capacity.core.errors import ExperimentError
from capacity.plan.experiment import default_experiment_path, load_experiment

SOAK_HELP = """Hold one open-model rate for a long time, then fit memory, queue, latency and error drift.

Same guards as a search (a breach stops the soak), stored segment by segment; at the end each drift
is fitted with its interval and called flat or growing against [soak]. Exit 0 pass, 1 a soak
threshold crossed (or the soak stopped on a guard), 2 bad input, 130 interrupted.

Examples:

  capacity soak --rps 60 --duration 90s

  capacity soak experiments/clinician-workflow-staging.toml --at recommended --from results/<run> --duration 2h

  capacity soak --at 1x --duration 30m --json > soak.json

  capacity soak --rps 40 --duration 10m --burst-rps 40 --burst-seconds 10 --burst-period 60
"""

SOAK_FLAGS = ("segment_seconds", "warmup_seconds", "burst_rps", "burst_seconds", "burst_period_s")
"""Flags that override ``[soak]`` keys of the same name."""

commands = Commands()


@commands.command("soak", help=SOAK_HELP)
def soak(
    experiment: Path | None = flags.experiment_file(),
    rps: float | None = typer.Option(None, "--rps", help="Base arrival rate to hold (req/s)."),
    at: str | None = typer.Option(None, "--at", help="recommended (with --from RUN) or a profile multiple: 1x, 2x."),
    from_run: str | None = typer.Option(None, "--from", help="Run folder or id whose recommendation --at uses."),
    duration: str = typer.Option(..., "--duration", help="How long to hold it: 90s, 30m, 2h."),
    segment_seconds: float | None = typer.Option(None, "--segment-seconds", help="Stored segment length (s)."),
    warmup_seconds: float | None = typer.Option(None, "--warmup-seconds", help="Excluded from the fits (s)."),
    burst_rps: float | None = typer.Option(None, "--burst-rps", help='Burst shape: extra req/s ([soak] "burst").'),
    burst_seconds: float | None = typer.Option(None, "--burst-seconds", help="Burst shape: length of a burst (s)."),
    burst_period_s: float | None = typer.Option(None, "--burst-period", help="Burst shape: one burst every (s)."),
    out: Path = flags.results_root(),
    json_out: bool = flags.json_only("the drift object"),
    workers: int = flags.local_workers(),
    allow_host: list[str] = flags.allow_hosts(),
    no_report: bool = flags.no_report(),
) -> None:
    from capacity.search.soak_plan import SoakPlan, parse_duration, soak_rate

    given = dict(locals())
    seconds = parse_duration(duration)
    exp = load_experiment(experiment if experiment is not None else default_experiment_path())
    changes = {k: given[k] for k in SOAK_FLAGS if given[k] is not None}
    if burst_rps is not None:
        changes["shape"] = "burst"
    if changes:
        exp = exp.with_changes(label="command-line flags", soak=changes)
    run_dir = run_dir_arg(from_run, out, "--from") if from_run is not None else None
    if run_dir is not None and at != "recommended":
        raise ExperimentError("--from applies only with --at recommended")
    base, why = soak_rate(exp, rps=rps, at=at, from_run=run_dir)
    from capacity.search.soak_run import run_soak

    options = flags.held_run_options(
        out, json_out=json_out, workers=workers, allow_host=allow_host, no_report=no_report
    )
    outcome = run_soak(exp, SoakPlan(base, seconds, why), options=options, console=Console(stderr=True))
    if json_out:
        emit_json(outcome.contract())
    raise typer.Exit(outcome.exit_code)
