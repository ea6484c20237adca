"""Max req/s of one generator process: our driver vs plain Locust FastHttpUser, same target, same run.

Run: .venv/bin/python benchmarks/bench_generator_cost.py
The target (a minimal keep-alive server, its own process) counts requests; each tool gets the same
number of concurrent connections and is pushed past what one core can do. Also measured: our
driver firing Locust's per-request ``request`` event (so Locust's stats keep working).
"""

from __future__ import annotations

import sys
from pathlib import Path

import gevent
import locust
from locust import FastHttpUser, constant, task
from locust.env import Environment

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _target import Target

from capacity.load.driver import LoadDriver, StageSpec
from capacity.load.settings import GeneratorSettings
from capacity.plan.experiment import Workload

CONC = 32
SECONDS, WARMUP = 6.0, 2.0
WL = Workload.model_validate({"endpoints": [{"name": "a", "path": "/a"}], "test_data": {"source": "none"}})


def _window(t: Target) -> float:
    gevent.sleep(WARMUP)
    c0 = t.count()
    gevent.sleep(SECONDS - WARMUP - 0.5)
    return (t.count() - c0) / (SECONDS - WARMUP - 0.5)


def ours(t: Target, *, events: bool = False) -> float:
    with LoadDriver(GeneratorSettings.of(t.url, WL, fire_locust_events=events, grace_s=0.05)) as d:
        g = gevent.spawn(_window, t)
        d.run_stage(StageSpec(0, 40_000.0, SECONDS, 0.0, max_inflight=CONC))
        return g.get()


def plain(t: Target) -> float:
    class U(FastHttpUser):
        host = t.url
        wait_time = constant(0)

        @task
        def a(self) -> None:
            self.client.get("/a")

    env = Environment(user_classes=[U], events=locust.events)
    r = env.create_local_runner()
    r.start(CONC, spawn_rate=CONC)
    got = gevent.spawn(_window, t).get()
    r.quit()
    return got


def main() -> None:
    t = Target(0.0)
    try:
        rows = []
        for _ in range(2):  # alternate to even out noise from other load on the machine
            rows.append((plain(t), ours(t), ours(t, events=True)))
        p = max(r[0] for r in rows)
        o = max(r[1] for r in rows)
        e = max(r[2] for r in rows)
        print(f"plain Locust FastHttpUser ({CONC} users): {p:8.0f} req/s")
        print(f"capacity driver (max_inflight {CONC}):    {o:8.0f} req/s   ratio {o / p:.3f}")
        print(f"  + Locust request event per request: {e:8.0f} req/s   ratio {e / p:.3f}")
    finally:
        t.close()


if __name__ == "__main__":
    main()
