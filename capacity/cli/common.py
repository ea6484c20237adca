"""What every command module shares, so none of them imports ``cli.app`` (which imports them all)."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import typer

from capacity.core.errors import CapacityError

F = TypeVar("F", bound=Callable[..., Any])

CONTEXT_SETTINGS: dict[str, Any] = {"help_option_names": ["-h", "--help"]}


def sub_app(name: str, help: str) -> typer.Typer:
    """A command group (``capacity results ...``) with the settings of the main app: ``-h``, help when bare."""
    return typer.Typer(
        name=name, help=help, no_args_is_help=True, rich_markup_mode=None, context_settings=CONTEXT_SETTINGS
    )


def emit_json(data: Any) -> None:
    """Machine output: indented JSON, the only thing on stdout."""
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")
    sys.stdout.flush()


def run_dir_arg(spec: str | Path, root: Path, flag: str = "") -> Path:
    """A run folder given as a path or a run id under ``root``; one line naming it otherwise."""
    from capacity.store import find_run_dir

    found = find_run_dir(spec, root)
    if found is None:
        what = f"{flag} {str(spec)!r}" if flag else str(spec)
        raise CapacityError(f"{what}: no such run folder (give a path or a run id under {root})")
    return found


class Commands:
    """A module's commands, declared where they are defined and added to the app in one place (``cli/app.py``)."""

    def __init__(self) -> None:
        self._commands: list[tuple[str, dict[str, Any], Callable[..., Any]]] = []
        self._groups: list[typer.Typer] = []

    def command(self, name: str, **options: Any) -> Callable[[F], F]:
        """Like ``typer.Typer.command``: ``options`` are passed through when the app registers it."""

        def record(func: F) -> F:
            self._commands.append((name, options, func))
            return func

        return record

    def group(self, group: typer.Typer) -> typer.Typer:
        """A command group (from ``sub_app``) to add under its own name."""
        self._groups.append(group)
        return group

    def register(self, app: typer.Typer) -> None:
        for name, options, func in self._commands:
            app.command(name, **options)(func)
        for group in self._groups:
            app.add_typer(group, name=group.info.name)
