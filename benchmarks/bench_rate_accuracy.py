"""Offered rate vs target against a 300 ms loopback server: our driver vs plain Locust pacing.

Run: .venv/bin/python benchmarks/bench_rate_accuracy.py
Both tools are counted at the server over the same measured window (after a warm-up). Plain
Locust uses constant_throughput(4) users (rate/4 of them), the usual way to pace Locust.
"""

from __future__ import annotations

import sys
from pathlib import Path

import gevent
import locust
from locust import FastHttpUser, constant_throughput, task
from locust.env import Environment

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _target import Target

from capacity.load.driver import LoadDriver, StageSpec
from capacity.load.settings import GeneratorSettings
from capacity.plan.experiment import Workload

RATES = [50.0, 100.0, 200.0]
STAGE_S, WARMUP_S = 10.0, 3.0


def ours(t: Target, rate: float) -> float:
    wl = Workload.model_validate({"endpoints": [{"name": "a", "path": "/a"}], "test_data": {"source": "none"}})
    with LoadDriver(GeneratorSettings.of(t.url, wl)) as d:
        g = gevent.spawn(_window_count, t)
        d.run_stage(StageSpec(0, rate, STAGE_S, WARMUP_S, max_inflight=int(rate)))
        return g.get()


def _window_count(t: Target) -> float:
    gevent.sleep(WARMUP_S)
    c0 = t.count()
    gevent.sleep(STAGE_S - WARMUP_S)
    return (t.count() - c0) / (STAGE_S - WARMUP_S)


def plain_locust(t: Target, rate: float) -> float:
    class Paced(FastHttpUser):
        host = t.url
        wait_time = constant_throughput(4)

        @task
        def a(self) -> None:
            self.client.get("/a")

    env = Environment(user_classes=[Paced], events=locust.events)
    runner = env.create_local_runner()
    users = int(rate / 4)
    runner.start(users, spawn_rate=users * 10)
    g = gevent.spawn(_window_count, t)
    got = g.get()
    runner.quit()
    return got


def main() -> None:
    t = Target(0.3)
    try:
        print(f"{'target':>8} {'ours':>9} {'err':>7} {'locust':>9} {'err':>7}  (req/s at server, 300 ms)")
        for rate in RATES:
            a = ours(t, rate)
            b = plain_locust(t, rate)
            print(f"{rate:8.1f} {a:9.2f} {100 * (a - rate) / rate:+6.2f}% {b:9.2f} {100 * (b - rate) / rate:+6.2f}%")
    finally:
        t.close()


if __name__ == "__main__":
    main()
