"""The ``capacity`` command line: one typer app; each command lives in its own module and is registered here.

Every user-fixable problem becomes one line on stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

import sys

import typer

try:  # typer >= 0.20 vendors click as typer._click
    from typer._click import exceptions as click_exc
except ImportError:  # pragma: no cover
    from click import exceptions as click_exc  # type: ignore[no-redef]

from capacity import __version__
from capacity.core.errors import CapacityError
from capacity.plan.secrets import redact

app = typer.Typer(
    name="capacity",
    help=(
        "Find where a service saturates, in controlled open-model stages, and size production from it.\n\n"
        "Examples:\n\n"
        "  capacity search                      # built-in sandbox, end to end\n\n"
        "  capacity search experiments/clinician-workflow-staging.toml\n\n"
        "  capacity sandbox --explain           # the sandbox's known capacity\n\n"
        "  capacity results list"
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"capacity {__version__}")
        raise typer.Exit(0)


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """capacity: capacity-search experiment runner."""


def _register_commands() -> None:
    """Every command, added in one place. Imported here, not at the top, so ``capacity --version`` stays fast."""
    from capacity.cli import analyze_cmd, metrics_cmd, report_cmd, sandbox_cmd, search_cmd, soak_cmd, worker_cmd

    if app.registered_commands or app.registered_groups:
        return  # main() called again in the same process (tests)
    for module in (search_cmd, sandbox_cmd, analyze_cmd, report_cmd, metrics_cmd, worker_cmd, soak_cmd):
        module.commands.register(app)
    from capacity.cli import scale_cmd

    scale_cmd.commands.register(app)
    from capacity.cli import failover_cmd

    failover_cmd.commands.register(app)


LOAD_COMMANDS = frozenset({"search", "nightly", "worker", "soak", "scale", "failover"})
"""Commands that drive load: Locust (gevent) must patch the standard library before anything else
imports ssl, or TLS contexts created later recurse forever."""


def _prepare_for_load(args: list[str]) -> None:
    command = next((a for a in args if not a.startswith("-")), "")
    if command in LOAD_COMMANDS:
        from capacity.load.patching import patch_gevent

        patch_gevent()


def main(argv: list[str] | None = None) -> None:
    """Console entry point: run the app, turning user errors into one line and exit 2."""
    _prepare_for_load(sys.argv[1:] if argv is None else argv)
    _register_commands()
    try:
        rv = app(args=argv, standalone_mode=False, prog_name="capacity")
    except CapacityError as exc:
        typer.echo(f"capacity: error: {redact(str(exc))}", err=True)
        sys.exit(exc.exit_code)
    except click_exc.NoArgsIsHelpError as exc:
        typer.echo(exc.ctx.get_help() if exc.ctx else "", err=False)
        sys.exit(0)
    except click_exc.UsageError as exc:
        cmd = exc.ctx.command_path if exc.ctx else "capacity"
        typer.echo(f"{cmd}: error: {exc.format_message()} (see '{cmd} --help')", err=True)
        sys.exit(2)
    except click_exc.ClickException as exc:
        typer.echo(f"capacity: error: {exc.format_message()}", err=True)
        sys.exit(2)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        typer.echo("capacity: interrupted", err=True)
        sys.exit(130)
    except KeyboardInterrupt:
        typer.echo("capacity: interrupted", err=True)
        sys.exit(130)
    sys.exit(rv if isinstance(rv, int) else 0)


if __name__ == "__main__":  # pragma: no cover
    main()
