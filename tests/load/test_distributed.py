"""workers=N: Locust master + local worker processes on loopback; exact split, loss, clean exit."""

from __future__ import annotations

import os
import signal
import time

import gevent
import psutil
import pytest

from capacity.errors import CapacityError
from capacity.load.driver import LoadDriver, StageSpec
from capacity.models import SecondSample
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


def _children() -> list[psutil.Process]:
    return [p for p in psutil.Process().children(recursive=True) if p.is_running() and p.status() != "zombie"]


@pytest.mark.slow
def test_two_workers_split_rate_exactly_and_stop_on_sigint() -> None:
    with DelayServer(0.05) as srv:
        d = LoadDriver(srv.url, WL, workers=2)
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
    with DelayServer(0.02) as srv, LoadDriver(srv.url, WL, workers=2) as d:
        d.start()
        victim = _children()[0]

        def kill_at_two(samples: list[SecondSample]) -> str | None:
            if len(samples) == 2:
                victim.kill()
            return None

        m = d.run_stage(StageSpec(0, 100.0, 6.0, 0.0), on_second=kill_at_two)
        assert m.worker_lost
        assert m.seconds[0].workers == 2 and m.seconds[-1].workers == 1
        m2 = d.run_stage(StageSpec(1, 100.0, 3.0, 0.0))
        assert not m2.worker_lost and m2.workers == 1
        assert abs(m2.offered_rps - 100.0) / 100.0 < 0.01  # the whole rate on the survivor
    assert _children() == []


def test_master_waits_for_expected_workers_then_fails_clearly() -> None:
    d = LoadDriver("http://127.0.0.1:9", WL, expect_remote_workers=1, worker_timeout_s=1.0)
    t0 = time.monotonic()
    with pytest.raises(CapacityError, match=r"only 0 of 1 load worker\(s\) joined the master on port \d+ within 1s"):
        d.start()
    assert time.monotonic() - t0 < 5
    d.close()


def test_worker_cli_bad_master_exit_2() -> None:
    r = run_cli("worker", "--master", "127.0.0.1:notaport", timeout=60)
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == ["capacity: error: --master '127.0.0.1:notaport': port must be a number"]
