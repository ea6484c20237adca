"""``capacity worker``: join a running ``capacity search`` master from another machine."""

from __future__ import annotations

import typer

from capacity.cli.common import Commands

WORKER_HELP = """Join a capacity search's load master as one more load-generator process.

The master (a `capacity search` run with remote workers expected) sends the workload, target and
each stage's share of the rate; this process generates that share until the master quits.
Runs in the foreground; Ctrl-C or SIGTERM leaves cleanly.

Examples:

  capacity worker --master 10.0.0.5:5557

  capacity worker --master loadmaster.internal
"""


commands = Commands()


@commands.command("worker", help=WORKER_HELP)
def worker(
    master: str = typer.Option(..., "--master", help="Master address HOST[:PORT] (port defaults to 5557)."),
) -> None:
    from capacity.load.distributed import run_worker  # gevent already patched by cli.app (LOAD_COMMANDS)

    raise typer.Exit(run_worker(master))
