"""The flags every load-sending command shares (search, soak, failover), declared once.

Each function returns a fresh ``typer.Option`` (typer reads the default of each parameter), so a
command writes ``out: Path = flags.results_root()`` and the help, default and bounds stay the same
in every command. ``held_run_options`` turns those flags into the run's ``SearchOptions``.
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, get_args

import typer

from capacity.core.errors import ExperimentError

if TYPE_CHECKING:
    from capacity.search import SearchOptions


def experiment_file() -> Any:
    """The optional EXPERIMENT argument: a TOML file, or the built-in sandbox when left out."""
    return typer.Argument(None, help="Experiment TOML file (default: the built-in sandbox).", show_default=False)


def results_root() -> Any:
    return typer.Option(Path("results"), "--out", help="Results root folder.")


def json_only(what: str) -> Any:
    """``--json``: stdout holds only ``what`` (the logs and progress go to stderr)."""
    return typer.Option(False, "--json", help=f"Print only {what} on stdout.")


def local_workers() -> Any:
    return typer.Option(0, "--workers", min=0, max=64, help="Local Locust worker processes (0: in-process).")


def allow_hosts() -> Any:
    return typer.Option([], "--allow-host", help="Allow a target host not in the file's allow-list.")


def no_report() -> Any:
    return typer.Option(False, "--no-report", help="Skip report.html.")


def command_line() -> str:
    """The command as typed, stored with the run so it can be repeated (values quoted, never read back)."""
    return "capacity " + " ".join(shlex.quote(a) for a in sys.argv[1:])


def one_of(flag: str, value: str | None, choices: Any) -> None:
    """``value`` is one of the ``Literal`` type ``choices`` (the experiment model's own), else one line naming it."""
    allowed: tuple[str, ...] = get_args(choices)
    if value is not None and value not in allowed:
        raise ExperimentError(f"{flag} {value!r}: expected {', '.join(allowed[:-1])} or {allowed[-1]}")


def held_run_options(
    out: Path, *, json_out: bool, workers: int, allow_host: list[str], no_report: bool
) -> SearchOptions:
    """The options of a run that holds a rate (soak, failover): the shared flags, nothing else."""
    from capacity.search import SearchOptions

    return SearchOptions(
        results_root=out,
        json_mode=json_out,
        workers=workers,
        allow_hosts=tuple(allow_host),
        write_report=not no_report,
        command=command_line(),
    )
