"""Stopped stages measured honestly, against a fake target that builds a real queue (no network).

The fake serves ``servers`` requests at a time, each taking ``service_s``; arrivals above
``servers / service_s`` per second wait in its queue, so latency grows for as long as the stage runs,
as on an overloaded target. Stages are one to three seconds long.
"""

from __future__ import annotations

import time
from typing import Any

import gevent
import pytest
from gevent.lock import Semaphore

from capacity.core.measurement import StageMeasurement, StageSpec
from capacity.core.models import SecondSample
from capacity.judge.guards import judge_window
from capacity.judge.verdict import judge_measurement
from capacity.load.engine import EngineStage, SecondRaw, StageEngine
from capacity.load.stage_totals import build_measurement, stage_sample
from capacity.plan.experiment import Guards


class QueueingExecutor:
    """``servers`` parallel servers of ``service_s`` each, behind one FIFO queue; ``kinds`` request kinds."""

    def __init__(self, *, servers: int = 2, service_s: float = 0.02, kinds: int = 2) -> None:
        self.names = [f"k{i}" for i in range(kinds)]
        self.weights = [3.0] + [1.0] * (kinds - 1)
        self.sem = Semaphore(servers)
        self.service_s = service_s
        self.resets = 0

    def prepare(self, max_inflight: int) -> None:
        pass

    def new_state(self) -> Any:
        return None

    def execute(self, kind: int, state: Any) -> int | str:
        with self.sem:
            gevent.sleep(self.service_s)
        return 200

    def reset(self) -> None:
        self.resets += 1

    def close(self) -> None:
        pass


def run_stage(
    ex: QueueingExecutor, spec: StageSpec, guards: Guards | None = None, stop_after: int | None = None
) -> StageMeasurement:
    """One stage as the driver runs it: the window guards (or a stop after ``stop_after`` seconds) stop it."""
    samples: list[SecondSample] = []
    start = time.time()

    def on_second(raw: SecondRaw) -> str | None:
        samples.append(stage_sample(spec, raw, start_wall=start, workers=1))
        if stop_after is not None:
            return "stop" if len(samples) >= stop_after else None
        breaches = judge_window(samples, guards) if guards is not None else []
        return breaches[0].code if breaches else None

    stage = EngineStage(
        rate=spec.target_rps,
        duration_s=spec.duration_s,
        warmup_s=spec.warmup_s,
        max_inflight=spec.max_inflight,
        start_wall=start,
        drain_s=0.3,
    )
    raw = StageEngine(ex, grace_s=0.1).run(stage, on_second=on_second)
    seconds = [stage_sample(spec, s, start_wall=start, workers=1) for s in raw.seconds]
    return build_measurement(spec, [raw], seconds, started_wall=start, aborted=raw.stopped, workers=0)


@pytest.mark.slow  # real requests in real time
def test_stopped_in_the_warm_up_the_stage_covers_every_arrival_and_censors_the_unfinished() -> None:
    guards = Guards(window_seconds=1, slo_p95_ms=60.0, max_error_ratio=0.01, min_goodput_ratio=0.01)
    spec = StageSpec(index=0, target_rps=130.0, duration_s=6.0, warmup_s=4.0, max_inflight=2000, guard_window_s=1)
    meas = run_stage(QueueingExecutor(servers=2, service_s=0.02), spec, guards)
    # the window guard (skipping the first 2 s) stops it after the third second, in the warm-up
    assert meas.aborted == "p95" and len(meas.seconds) == 3 and meas.aborted_in_warmup
    assert meas.measure_from == meas.started_at
    # every arrival up to the stop is in the figures: sent = ok + errors + unfinished
    assert meas.unfinished > 20 and meas.percentiles_censored
    assert meas.requests == meas.ok + meas.errors + meas.unfinished
    # arrivals stop at the stop: those a grace after the last closed second are in, none later
    assert sum(s.offered for s in meas.seconds) < meas.requests <= sum(s.offered for s in meas.seconds) + 14
    # one window for offered and latency: offered/target within 1% (uniform arrivals, nothing dropped)
    assert meas.dropped == 0 and abs(meas.offered_rps / spec.target_rps - 1) < 0.01, meas.offered_rps
    # goodput over the same window is the queue's throughput (2 / 0.02 s = 100/s), not the arrival rate
    assert 85 < meas.achieved_rps < 105, meas.achieved_rps
    result = judge_measurement(meas, guards)
    failing = meas.seconds[-1]
    assert failing.p95_ms is not None and result.p95_ms is not None and result.p95_ms >= failing.p95_ms
    assert result.error_ratio == round((meas.errors + meas.unfinished) / meas.requests, 6) > 0
    assert result.aborted_in_warmup and result.percentiles_censored and result.unfinished == meas.unfinished
    # per-endpoint rows add up to the stage's totals
    eps = result.endpoints.values()
    assert sum(e.requests for e in eps) == result.requests
    assert sum(e.ok for e in eps) == result.ok and sum(e.unfinished for e in eps) == result.unfinished
    assert all(e.p95_ms is not None for e in eps) and result.worst_endpoint in result.endpoints


@pytest.mark.slow  # real requests in real time
def test_a_censored_wait_is_the_time_waited_up_to_the_kill() -> None:
    # one server of 10 s: the first request never finishes; the others queue behind it
    spec = StageSpec(index=0, target_rps=20.0, duration_s=3.0, warmup_s=0.0, max_inflight=100)
    ex = QueueingExecutor(servers=1, service_s=10.0, kinds=1)
    t0 = time.perf_counter()
    meas = run_stage(ex, spec, stop_after=1)
    waited_ms = (time.perf_counter() - t0) * 1000
    assert meas.ok == 0 and meas.unfinished == meas.requests > 15 and ex.resets == 1
    assert meas.status_codes == {"aborted": meas.requests}
    top = meas.percentile_ms(100)
    # the first arrival waited from its intended start to the kill: over the second it ran + the 0.3 s drain
    assert top is not None and 1300 <= top <= waited_ms + 50
    assert not meas.aborted_in_warmup and meas.percentiles_censored


@pytest.mark.slow  # real requests in real time
def test_a_stage_that_ran_to_its_end_keeps_its_measured_window() -> None:
    spec = StageSpec(index=0, target_rps=50.0, duration_s=1.5, warmup_s=0.5, max_inflight=100)
    meas = run_stage(QueueingExecutor(servers=4, service_s=0.01), spec)
    assert meas.aborted is None and not meas.aborted_in_warmup and meas.unfinished == 0
    assert meas.requests == 50 and meas.window_s == 1.0 and abs(meas.offered_rps - 50.0) < 0.5
    assert sum(e.requests for e in meas.endpoints.values()) == 50
