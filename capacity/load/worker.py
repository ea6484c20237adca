"""Entry point of a load worker process: ``python -m capacity.load.worker --master HOST:PORT``.

Local workers are started by the driver with ``--parent-pid`` (they ignore Ctrl-C, which the
master handles, and exit when the parent disappears); remote ones use ``capacity worker``.
"""

from __future__ import annotations

import argparse
import sys

from capacity.core.errors import CapacityError
from capacity.load.patching import patch_gevent


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="capacity-worker")
    ap.add_argument("--master", required=True)
    ap.add_argument("--parent-pid", type=int, default=None)
    args = ap.parse_args(argv)
    patch_gevent()  # before Locust and ssl are imported
    from capacity.load.distributed import run_worker

    try:
        return run_worker(args.master, args.parent_pid)
    except CapacityError as exc:
        print(f"capacity: error: {exc}", file=sys.stderr)
        return exc.exit_code


if __name__ == "__main__":
    sys.exit(main())
