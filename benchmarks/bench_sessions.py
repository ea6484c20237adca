"""Max sessions/s and requests/s of one generator process: our session driver vs plain Locust, same run.

Run: .venv/bin/python benchmarks/bench_sessions.py
A session is the check-in flow's shape: a GET, then two POSTs with JSON bodies, about one test record,
no think time. Plain Locust runs it as a ``SequentialTaskSet`` on ``FastHttpUser`` (closed model, a
session per loop); our driver starts sessions open-model at a rate past what one core can send, with
the same number of concurrent connections. The target (its own process) counts requests; Locust's
sessions/s is that count over three. Ours is the sessions the stage recorded as *completed* (all three
calls answered): pushed far past capacity, new session starts take the slots later calls need and
those sessions fail as dropped, so the driver is run at a few rates and the best completed figure kept.
"""

from __future__ import annotations

import sys
from pathlib import Path

import gevent
import locust
from locust import FastHttpUser, SequentialTaskSet, constant, task
from locust.env import Environment

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _target import Target

from capacity.load.driver import LoadDriver, StageSpec
from capacity.load.settings import GeneratorSettings
from capacity.plan.experiment import Workload

CONC = 32
SECONDS, WARMUP = 6.0, 2.0
CALLS = 3
WL = Workload.model_validate(
    {
        "endpoints": [
            {"name": "status", "path": "/s/{sta3n}?patientDfn={dfn}"},
            {"name": "summary", "method": "POST", "path": "/a/{ien}/summary", "body": '{"patientDfn": "{dfn}"}'},
            {"name": "checkin", "method": "POST", "path": "/a/{ien}/checkins", "body": '{"patientDfn": "{dfn}"}'},
        ],
        "flows": [
            {
                "name": "check-in",
                "per_hour": 3600,
                "steps": [{"endpoint": "status"}, {"endpoint": "summary"}, {"endpoint": "checkin"}],
            }
        ],
        "test_data": {"source": "sandbox", "records": 5000},
    }
)


def _window(t: Target) -> float:
    gevent.sleep(WARMUP)
    c0 = t.count()
    gevent.sleep(SECONDS - WARMUP - 0.5)
    return (t.count() - c0) / (SECONDS - WARMUP - 0.5)


def ours(t: Target, rate: float) -> tuple[float, float, int]:
    """(requests/s at the target, completed sessions/s over the stage's window, failed sessions)."""
    with LoadDriver(GeneratorSettings.of(t.url, WL, grace_s=0.05)) as d:
        g = gevent.spawn(_window, t)
        m = d.run_stage(StageSpec(0, rate, SECONDS, WARMUP, max_inflight=CONC))
        flow = m.flows["check-in"]
        return g.get(), flow.completed / m.measured_s, flow.failed


def plain(t: Target) -> float:
    class CheckIn(SequentialTaskSet):
        @task
        def status(self) -> None:
            self.client.get("/s/442?patientDfn=100001")

        @task
        def summary(self) -> None:
            self.client.post("/a/1000001/summary", data='{"patientDfn": "100001"}')

        @task
        def checkin(self) -> None:
            self.client.post("/a/1000001/checkins", data='{"patientDfn": "100001"}')

    class U(FastHttpUser):
        host = t.url
        wait_time = constant(0)
        tasks = [CheckIn]  # noqa: RUF012 - Locust reads the class attribute

    env = Environment(user_classes=[U], events=locust.events)
    r = env.create_local_runner()
    r.start(CONC, spawn_rate=CONC)
    got = gevent.spawn(_window, t).get()
    r.quit()
    return got


def main() -> None:
    t = Target(0.0)
    try:
        plains, runs = [], []
        for _ in range(2):  # alternate to even out noise from other load on the machine
            p = plain(t)
            plains.append(p)
            for mult in (1.2, 1.6, 2.0):
                runs.append((*ours(t, p * mult), p * mult))
        p = max(plains)
        req, done, failed, rate = max(runs, key=lambda r: r[1])
        print(f"plain Locust SequentialTaskSet ({CONC} users): {p:8.0f} req/s {p / CALLS:8.0f} sessions/s")
        print(
            f"capacity session driver (max_inflight {CONC}): {req:8.0f} req/s {done:8.0f} sessions/s completed "
            f"(offered {rate:.0f} req/s, {failed} failed)   ratio {done / (p / CALLS):.3f}"
        )
    finally:
        t.close()


if __name__ == "__main__":
    main()
