"""Max req/s with 1 and 2 local worker processes: our driver vs Locust's own --processes, same run.

Run: .venv/bin/python benchmarks/bench_workers.py
Requests are counted at the target (its own process). Then a below-capacity stage with 2 workers
shows how exactly the rate is split (per-worker offered vs rate/2).
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

import gevent
import locust  # noqa: F401

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _target import Target

from capacity.load.driver import LoadDriver, StageSpec
from capacity.load.settings import GeneratorSettings, WorkerSettings
from capacity.plan.experiment import Workload

CONC = 64
SECONDS, WARMUP = 8.0, 3.0
WL = Workload.model_validate({"endpoints": [{"name": "a", "path": "/a"}], "test_data": {"source": "none"}})
LOCUSTFILE = """
from locust import FastHttpUser, constant, task

class U(FastHttpUser):
    wait_time = constant(0)

    @task
    def a(self):
        self.client.get("/a")
"""


def _window(t: Target) -> float:
    gevent.sleep(WARMUP)
    c0 = t.count()
    gevent.sleep(SECONDS - WARMUP - 1.0)
    return (t.count() - c0) / (SECONDS - WARMUP - 1.0)


def ours(t: Target, n: int) -> float:
    with LoadDriver(GeneratorSettings.of(t.url, WL, grace_s=0.05), workers=WorkerSettings(workers=n)) as d:
        d.start()
        g = gevent.spawn(_window, t)
        d.run_stage(StageSpec(0, 40_000.0, SECONDS, 0.0, max_inflight=CONC))
        return g.get()


def plain(t: Target, n: int, lf: str) -> float:
    cmd = [
        sys.executable,
        "-m",
        "locust",
        "-f",
        lf,
        "--headless",
        "-u",
        str(CONC),
        "-r",
        str(CONC),
        "-t",
        f"{SECONDS + 3:.0f}s",
        "--host",
        t.url,
        "--only-summary",
        "--loglevel",
        "ERROR",
    ]
    if n > 1:
        cmd += ["--processes", str(n)]
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(3.0)  # start-up (workers join), then the same window as ours
    got = _window(t)
    p.wait(timeout=60)
    return got


def main() -> None:
    t = Target(0.0)
    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as f:
        f.write(LOCUSTFILE)
    try:
        for n in (1, 2):
            o, p = ours(t, n), plain(t, n, f.name)
            print(f"{n} worker(s): capacity {o:8.0f} req/s   Locust --processes {p:8.0f} req/s   ratio {o / p:.3f}")
        with LoadDriver(GeneratorSettings.of(t.url, WL), workers=WorkerSettings(workers=2)) as d:
            m = d.run_stage(StageSpec(0, 2000.0, 6.0, 1.0, max_inflight=200))
        errs = [100 * (w["offered_rps"] - 1000.0) / 1000.0 for w in m.per_worker.values()]
        print(
            f"2 workers at 2000 req/s: total offered {m.offered_rps:.1f} req/s, per-worker error "
            + ", ".join(f"{e:+.3f}%" for e in errs)
            + f", dropped {m.dropped}"
        )
    finally:
        t.close()
        Path(f.name).unlink()


if __name__ == "__main__":
    main()
