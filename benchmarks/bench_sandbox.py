"""The sandbox's own ceiling: max req/s (and per core of sandbox CPU) at ~0 service time.

Later benchmarks use it to show the sandbox is not what limits them. A saturating closed-loop
aiohttp generator (many keep-alive connections, in its own process) drives, in the same run:

  baseline   a bare aiohttp server answering a constant JSON body (one process)
  /health    sandbox front -> app task hop, no service time
  GET status the full workload path (parse, validate, slot, data lookup, JSON response)

Run: ``.venv/bin/python benchmarks/bench_sandbox.py [--seconds 5] [--connections 64]``
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import socket
import time
from collections.abc import Callable
from typing import Any

import aiohttp
import psutil
from aiohttp import web

from capacity.sandbox import SandboxConfig, run_sandbox


def _generator(url: str, seconds: float, connections: int, out: Any) -> None:
    async def run() -> tuple[int, int]:
        ok = bad = 0
        conn = aiohttp.TCPConnector(limit=connections)
        async with aiohttp.ClientSession(connector=conn) as session:
            end = time.monotonic() + seconds

            async def worker() -> None:
                nonlocal ok, bad
                while time.monotonic() < end:
                    async with session.get(url) as resp:
                        await resp.read()
                        if resp.status == 200:
                            ok += 1
                        else:
                            bad += 1

            await asyncio.gather(*(worker() for _ in range(connections)))
        return ok, bad

    proc = psutil.Process()
    c0 = sum(proc.cpu_times()[:2])
    t0 = time.monotonic()
    ok, bad = asyncio.run(run())
    wall = time.monotonic() - t0
    out.put((ok, bad, wall, (sum(proc.cpu_times()[:2]) - c0) / wall))


def measure(url: str, pids: list[int], seconds: float, connections: int, generators: int) -> dict[str, float]:
    procs = [psutil.Process(p) for p in pids]
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    gens = [ctx.Process(target=_generator, args=(url, seconds, connections, q)) for _ in range(generators)]
    for g in gens:
        g.start()
    time.sleep(0.5)  # interpreter start-up of the generators is not server time
    before = [sum(p.cpu_times()[:2]) for p in procs]
    t0 = time.monotonic()
    results = [q.get(timeout=seconds + 60) for _ in gens]
    elapsed = time.monotonic() - t0
    for g in gens:
        g.join()
    ok = sum(r[0] for r in results)
    bad = sum(r[1] for r in results)
    wall = max(r[2] for r in results)
    gen_cores = sum(r[3] for r in results)
    cores = sum(sum(p.cpu_times()[:2]) - b for p, b in zip(procs, before, strict=True)) / elapsed
    rps = ok / wall
    return {
        "rps": rps,
        "errors": bad,
        "server_cores": cores,
        "rps_per_core": rps / max(cores, 1e-9),
        "generator_cores": gen_cores,
    }


def _baseline_server(port: int) -> None:
    async def hello(_: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    app = web.Application()
    app.router.add_get("/", hello)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait(url: str) -> None:
    import urllib.request

    for _ in range(200):
        try:
            urllib.request.urlopen(url, timeout=1).read()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{url} did not come up")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--connections", type=int, default=64, help="per generator process")
    ap.add_argument("--generators", type=int, default=2, help="generator processes")
    args = ap.parse_args()
    print(
        f"{psutil.cpu_count()} CPUs; {args.generators} closed-loop aiohttp generator process(es) x "
        f"{args.connections} keep-alive connections, "
        f"{args.seconds:g} s per case\n"
    )
    rows: list[tuple[str, dict[str, float]]] = []

    port = _free_port()
    base = mp.get_context("spawn").Process(target=_baseline_server, args=(port,), daemon=True)
    base.start()
    try:
        _wait(f"http://127.0.0.1:{port}/")
        rows.append(
            (
                "baseline: bare aiohttp server",
                measure(f"http://127.0.0.1:{port}/", [base.pid or 0], args.seconds, args.connections, args.generators),
            )
        )
    finally:
        base.terminate()
        base.join()

    status = "/api/v1/vista-sites/442/patient_demographics_status?patientDfn=1234"
    cases: list[tuple[str, int, str]] = [
        ("sandbox /health, 1 app task", 1, "/health"),
        ("sandbox GET status, 1 app task", 1, status),
        ("sandbox GET status, 2 app tasks", 2, status),
    ]
    for label, tasks, path in cases:
        cfg = SandboxConfig(
            app_tasks=tasks,
            threads=256,
            backlog=10_000,
            service_ms=0.001,
            cpu_ms=0.0,
            service_dist="const",
            sidekiq_tasks=0,
            records=10,
        )
        with run_sandbox(cfg) as sb:
            result = measure(sb.base_url + path, list(sb.pids), args.seconds, args.connections, args.generators)
            rows.append((label, result))

    baseline = rows[0][1]
    fmt: Callable[[str, dict[str, float]], str] = lambda n, r: (  # noqa: E731
        f"{n:34s} {r['rps']:8.0f} req/s  {r['server_cores']:4.2f} server cores  {r['rps_per_core']:8.0f} req/s/core"
        f"  ratio {r['rps_per_core'] / baseline['rps_per_core']:4.2f}  (generator {r['generator_cores']:.2f} cores,"
        f" errors {r['errors']:.0f})"
    )
    for name, r in rows:
        print(fmt(name, r))
    best = max(r["rps"] for n, r in rows[1:] if "status" in n)
    print(
        f"\nsandbox ceiling on the workload path: {best:.0f} req/s on this machine "
        f"(capacities under test should stay well below, e.g. <= {best / 5:.0f} req/s)"
    )


if __name__ == "__main__":
    main()
