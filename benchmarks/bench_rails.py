"""The Rails stack's three bottlenecks, each named by the search and checked against ``wrk``.

For each scenario it starts one Rails stack (``run_sandbox``), runs ``capacity search`` against it
(experiments/sandbox-rails.toml with the scenario's settings) and then, on the same server,
``wrk`` (closed loop, ``--connections``, the same request mix from a Lua script): the search's
saturation and bottleneck beside wrk's requests per second.

  threads   2 tasks x 4 threads, pool 4, 50 ms VistA wait           expect puma_threads
  db_pool   2 tasks x 10 threads, pool 3, 50 ms VistA wait          expect db_pool
  database  4 tasks x 4 threads, hot rows 1, check-in-heavy mix     expect database

Run (real load: under the machine-wide lock):
``flock /tmp/capacity-realtime.lock .venv/bin/python benchmarks/bench_rails.py [threads db_pool database]``
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from rich.console import Console

from capacity.plan.experiment import Experiment, load_experiment
from capacity.sandbox import SandboxConfig, run_sandbox
from capacity.sandbox.records import synthetic_records
from capacity.search import SearchOptions, run_search

REPO = Path(__file__).resolve().parents[1]
CHECKIN_HEAVY = [
    {"name": "appointment_checkin", "rpm": 6000},
    {"name": "demographics_status", "rpm": 1500},
    {"name": "appointment_summary", "rpm": 300},
]
SCENARIOS: dict[str, dict[str, Any]] = {
    "threads": {"sandbox": {"app_tasks": 2, "threads": 4, "db_pool": 4, "service_ms": 50.0}},
    "db_pool": {"sandbox": {"app_tasks": 2, "threads": 10, "db_pool": 3, "service_ms": 50.0}},
    "database": {
        "sandbox": {"app_tasks": 4, "threads": 4, "hot_rows": 1, "service_ms": 20.0, "cpu_ms": 3.0},
        "mix": CHECKIN_HEAVY,
        "stages": {"start_rps": 60.0},
    },
}
WRK_LUA = """
local dfns, iens, weights = {%(dfns)s}, %(first_ien)d, {%(weights)s}
local n, id = 0, 0
setup = function(thread) id = id + 1; thread:set("offset", id * 20000) end
request = function()
  n = n + 1
  local r, d = math.random(), dfns[(n %% #dfns) + 1]
  wrk.headers["Content-Type"] = "application/json"
  if r < weights[1] then
    local ien = iens + ((offset + n) %% %(records)d)
    return wrk.format("POST", "/api/v1/vista-sites/442/appointments/" .. ien .. "/checkins", nil, "{}")
  elseif r < weights[2] then
    return wrk.format("POST", "/api/v1/vista-sites/442/appointments/" .. (iens + n %% 1000) .. "/summary", nil, "{}")
  end
  return wrk.format("POST", "/api/v1/vista-sites/442/patient_demographics_status", nil,
    '{"patientDfn": "' .. d .. '", "demographicsConfirmationPayload": {}}')
end
"""


def _experiment(name: str, base_url: str) -> Experiment:
    spec = SCENARIOS[name]
    exp = load_experiment(REPO / "experiments" / "sandbox-rails.toml")
    changes: dict[str, Any] = {
        "target": {"base_url": base_url},
        "metrics": {"url": base_url},
        "stages": {"max_stages": 7, "resolution": 0.08, **spec.get("stages", {})},
        "sandbox": spec["sandbox"],
    }
    if "mix" in spec:
        rpm = {m["name"]: m["rpm"] for m in spec["mix"]}
        changes["workload"] = {
            "endpoints": [{**e.model_dump(mode="python"), "rpm": rpm[e.name]} for e in exp.workload.endpoints]
        }
    return exp.with_changes(label=f"scenario {name}", **changes)


def _wrk(base_url: str, exp: Experiment, seconds: int, connections: int) -> dict[str, float]:
    """wrk's closed-loop requests/s (and non-2xx share) over the experiment's mix; check-ins use
    appointments the search did not (from the far end of the records)."""
    td = exp.workload.test_data
    records = synthetic_records(td.seed, td.records)
    weights = {e.name: float(e.rpm or 0) for e in exp.workload.endpoints}
    total = sum(weights.values())
    w1 = weights.get("appointment_checkin", 0) / total
    w2 = w1 + weights.get("appointment_summary", 0) / total
    half = len(records) // 2
    script = WRK_LUA % {
        "dfns": ",".join(f'"{r.dfn}"' for r in records[:500]),
        "first_ien": int(records[half].ien),
        "records": len(records) - half,
        "weights": f"{w1:.4f},{w2:.4f}",
    }
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as fh:
        fh.write(script)
    try:
        out = subprocess.run(
            ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "-s", fh.name, "--latency", base_url],
            capture_output=True,
            text=True,
            timeout=seconds + 30,
            check=True,
        ).stdout
    finally:
        os.unlink(fh.name)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    total_m = re.search(r"(\d+) requests in", out)
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)\b", out)
    p99_ms = float(p99.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[p99.group(2)] if p99 else float("nan")
    share = int(bad.group(1)) / int(total_m.group(1)) if bad and total_m else 0.0
    return {"wrk_rps": rps, "wrk_non_2xx": share, "wrk_p99_ms": p99_ms}


def run_scenario(name: str, results: Path, wrk_seconds: int, connections: int) -> dict[str, Any]:
    probe = _experiment(name, "http://127.0.0.1:1")
    cfg = SandboxConfig.from_settings(
        probe.sandbox, seed=probe.workload.test_data.seed, records=probe.workload.test_data.records
    )
    with run_sandbox(cfg) as sb:
        exp = _experiment(name, sb.base_url)
        os.environ.setdefault("DD_API_KEY", "sandbox")
        os.environ.setdefault("DD_APP_KEY", "sandbox")
        summary = run_search(
            exp,
            options=SearchOptions(results_root=results, json_mode=True, write_report=False),
            console=Console(quiet=True),
        )
        wrk = _wrk(sb.base_url, exp, wrk_seconds, connections)
    b = summary.bottleneck
    return {
        "scenario": name,
        "saturation_rps": summary.saturation_rps,
        "knee_rps": summary.knee_rps,
        "bottleneck": b.model_dump() if b else None,
        **wrk,
        "results": summary.results_dir,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("scenarios", nargs="*", default=list(SCENARIOS), choices=list(SCENARIOS))
    ap.add_argument("--wrk-seconds", type=int, default=10)
    ap.add_argument("--connections", type=int, default=64)
    ap.add_argument("--out", type=Path, default=Path(tempfile.gettempdir()) / "capacity-bench-rails")
    args = ap.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (install: sudo apt-get install -y wrk)")
    for name in args.scenarios:
        print(json.dumps(run_scenario(name, args.out, args.wrk_seconds, args.connections)), flush=True)


if __name__ == "__main__":
    main()
