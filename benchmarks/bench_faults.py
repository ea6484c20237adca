"""The fault matrix (issue 21): each fault against a short real search on loopback, one line per fault.

For every fault of the issue (a steady background queue; Datadog answering 5xx for 60 s mid-stage;
the agent's points 90 s late; a load worker killed mid-stage; an app task killed mid-stage; a proxy
answering 429/503; the generator's clock 30 s ahead of the metrics; foreign traffic on the target)
it runs a three-stage search of 4-s stages (``tests/faults/matrix.py``: the same runs the slow tests
check) against a loopback target, the agent-shaped fake Datadog or the sandbox, and prints

    fault, survived (yes/no), stopped_reason, stages lost  | verdicts | what the tool said

Run it under the machine-wide lock (it sends real load in real time, about 4 minutes in all):

    flock /tmp/capacity-realtime.lock .venv/bin/python benchmarks/bench_faults.py [--only NAME ...] [--json]
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repo root: tests.faults is the harness

from capacity.load.patching import patch_gevent

patch_gevent()  # the fault harness serves the target with gevent, as the tests do

import argparse  # noqa: E402
import json  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

from tests.faults.matrix import FAULTS, as_json, run_fault  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", nargs="*", choices=sorted(FAULTS), help="run only these faults")
    ap.add_argument("--json", action="store_true", help="print the table as JSON instead")
    args = ap.parse_args()
    names = args.only or list(FAULTS)
    results, ok = [], []
    with tempfile.TemporaryDirectory(prefix="capacity-faults-") as tmp:
        if not args.json:
            print("fault, survived (yes/no), stopped_reason, stages lost  | verdicts | what the tool said", flush=True)
        for name in names:
            t0 = time.monotonic()
            r = run_fault(name, Path(tmp))
            results.append(r)
            ok.append(r.survived and r.stages_lost == 0)  # read while the run folders exist
            if not args.json:
                print(f"{r.line()}  ({time.monotonic() - t0:.0f} s)", flush=True)
        if args.json:
            print(json.dumps(as_json(results), indent=2))
    return 0 if all(ok) else 1


if __name__ == "__main__":
    sys.exit(main())
