"""workers=N: Locust master + local worker processes on loopback; exact split, loss, clean exit."""

from __future__ import annotations

import os
import signal
import time

import gevent
import psutil
import pytest

from capacity.core.errors import CapacityError
from capacity.core.models import SecondSample
from capacity.load.driver import LoadDriver, StageSpec
from capacity.load.settings import GeneratorSettings, WorkerSettings
from capacity.plan.experiment import Workload
from tests.conftest import run_cli
from tests.load.servers import DelayServer

WL = Workload.model_validate(
    {
        "endpoints": [
            {"name": "a", "path": "/a/{sta3n}"},
            {"name": "c", "method": "POST", "path": "/c/{ien}", "consumes": True},
        ],
        "test_data": {"records": 2000},
    }
)
TWO = WorkerSettings(workers=2)


def _children() -> list[psutil.Process]:
    return [p for p in psutil.Process().children(recursive=True) if p.is_running() and p.status() != "zombie"]


@pytest.mark.slow
def test_two_workers_split_rate_exactly_and_stop_on_sigint() -> None:
    with DelayServer(0.05) as srv:
        d = LoadDriver(GeneratorSettings.of(srv.url, WL), workers=TWO)
        try:
            m = d.run_stage(StageSpec(0, 200.0, 4.0, 1.0, max_inflight=100))
            assert len(_children()) == 2
            assert m.workers == 2 and not m.worker_lost
            assert abs(m.offered_rps - 200.0) / 200.0 < 0.01
            assert len(m.per_worker) == 2
            for w in m.per_worker.values():
                assert abs(w["offered_rps"] - 100.0) / 100.0 < 0.01
            assert [s.workers for s in m.seconds] == [2, 2, 2, 2]
            assert sum(s.offered for s in m.seconds[1:]) == m.requests == 600
            checkins = [k for k in srv.paths if k.startswith("POST /c/")]
            assert all(srv.paths[k] == 1 for k in checkins)  # stripes: no record used twice across workers

            def interrupt() -> None:
                gevent.sleep(1.5)
                os.kill(os.getpid(), signal.SIGINT)

            g = gevent.spawn(interrupt)
            t0 = time.monotonic()
            m2 = d.run_stage(StageSpec(1, 100.0, 30.0, 0.0))
            g.join()
            assert m2.interrupted and time.monotonic() - t0 < 4.0
        finally:
            d.close()
    deadline = time.monotonic() + 5
    while _children() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _children() == []


@pytest.mark.slow
def test_worker_killed_mid_stage_marks_lost_and_next_stage_runs_on_the_rest() -> None:
    with DelayServer(0.02) as srv, LoadDriver(GeneratorSettings.of(srv.url, WL), workers=TWO) as d:
        d.start()
        victim = _children()[0]

        def kill_at_two(samples: list[SecondSample]) -> str | None:
            if len(samples) == 2:
                victim.kill()
            return None

        m = d.run_stage(StageSpec(0, 100.0, 6.0, 0.0), on_second=kill_at_two)
        assert m.worker_lost
        assert m.seconds[0].workers == 2 and m.seconds[-1].workers == 1
        # the survivor's arrivals are all accounted for, per endpoint too
        assert m.requests == m.ok + m.errors + m.unfinished > 0
        assert sum(e.requests for e in m.endpoints.values()) == m.requests
        m2 = d.run_stage(StageSpec(1, 100.0, 3.0, 0.0))
        assert not m2.worker_lost and m2.workers == 1
        assert abs(m2.offered_rps - 100.0) / 100.0 < 0.01  # the whole rate on the survivor
    assert _children() == []


@pytest.mark.slow
def test_workers_report_requests_in_flight_at_a_stop_as_unfinished_with_their_waits() -> None:
    # every request takes 3 s: all are still in flight when the stage stops after its second second
    with DelayServer(3.0) as srv, LoadDriver(GeneratorSettings.of(srv.url, WL), workers=TWO) as d:
        stop_at_two = lambda samples: "p95" if len(samples) == 2 else None  # noqa: E731
        m = d.run_stage(StageSpec(0, 40.0, 8.0, 4.0, max_inflight=200, guard_window_s=1), on_second=stop_at_two)
        assert m.aborted == "p95" and m.aborted_in_warmup and m.workers == 2
        assert m.ok == 0 and m.unfinished == m.requests and m.status_codes == {"aborted": m.requests}
        assert abs(m.offered_rps - 40.0) / 40.0 < 0.02 and 80 <= m.requests <= 120
        # censored waits: from each arrival's intended start to its worker's kill (stop + 0.5 s drain)
        p50, top = m.percentile_ms(50), m.percentile_ms(100)
        assert p50 is not None and top is not None and 900 < p50 < top < 3000
        # the per-endpoint histograms and counts merged like the stage's
        assert sum(e.requests for e in m.endpoints.values()) == m.requests
        assert sum(e.unfinished for e in m.endpoints.values()) == m.unfinished
        assert all(e.p95_ms is not None and e.p95_ms > 900 for e in m.endpoints.values())


def test_master_waits_for_expected_workers_then_fails_clearly() -> None:
    remote = WorkerSettings(expect_remote_workers=1, worker_timeout_s=1.0)
    d = LoadDriver(GeneratorSettings.of("http://127.0.0.1:9", WL), workers=remote)
    t0 = time.monotonic()
    with pytest.raises(CapacityError, match=r"only 0 of 1 load worker\(s\) joined the master on port \d+ within 1s"):
        d.start()
    assert time.monotonic() - t0 < 5
    d.close()


def test_worker_cli_bad_master_exit_2() -> None:
    r = run_cli("worker", "--master", "127.0.0.1:notaport", timeout=60)
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == ["capacity: error: --master '127.0.0.1:notaport': port must be a number"]
