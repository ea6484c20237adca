"""The open-model stage engine of one generator process: schedule, slots, exact histograms.

One gevent loop per process. A scheduler greenlet walks the precomputed arrival times; each due
arrival is handed to an idle slot greenlet (long-lived: spawning one per request costs ~15 us).
If no slot frees up within ``grace_s`` of the intended time, or the scheduler itself is that late
(a starved generator), the arrival is *dropped*: counted, never sent later in a burst. Latency runs
from the intended start, so a stalled target shows its full delay (no coordinated omission).

Per-second buckets count offered (by intended second), completions (by completion second) and
keep a small histogram that is summarised and freed as each second closes. Stage totals and
per-kind histograms are kept apart for the warm-up and the measured part (by intended start). When a
stage stops with requests still in flight, the slots are killed and each such request is recorded,
once per stage, with the time it had waited by then (right-censored) and counted ``unfinished``: a
slot knows the arrival it is serving, so the per-request path only stores and clears it. Arrivals whose
consuming endpoint found no unused test record are counted here, and only here (``records_exhausted``).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import gevent
import psutil

from capacity.load.executors import Executor
from capacity.load.raw import HIGHEST_US, SecondRaw, StageRaw, new_histogram
from capacity.load.schedule import Arrival, Shape
from capacity.load.session_stage import SessionStage
from capacity.load.stage_state import Stage
from capacity.plan.base import Strict

__all__ = [
    "HIGHEST_US",
    "EngineStage",
    "SecondRaw",
    "StageEngine",
    "StageRaw",
    "drain_seconds",
    "new_histogram",
    "stage_seconds",
]


def stage_seconds(duration_s: float) -> int:
    """Whole seconds a stage of ``duration_s`` spans (a partial last second counts)."""
    return max(1, int(duration_s + 0.999999))


def drain_seconds(timeout_s: float) -> float:
    """How long in-flight requests may drain after arrivals stop: the request timeout and a margin."""
    return timeout_s + 0.5


def _stage_type(ex: Executor) -> type[Stage]:
    """The plain stage, or the session stage when the executor runs flows as sessions."""
    return Stage if getattr(ex, "sessions", None) is None else SessionStage


class EngineStage(Strict):
    """What one generator process runs in a stage: its share of the rate, the schedule's shape and seed,
    a common start; a distributed worker receives it as its ``cap_stage`` message, as this model."""

    rate: float
    duration_s: float
    warmup_s: float
    arrival: Arrival = "uniform"
    shape: Shape = ()
    max_inflight: int = 256
    seed: int = 0
    phase: float = 0.0
    """Where in its interarrival this process starts (worker ``i`` of ``n``: ``i / n``)."""
    start_wall: float | None = None
    """The stage's start (wall clock; None: now)."""
    drain_s: float = 10.0


class StageEngine:
    """Runs stages for one executor. ``grace_s``: how late an arrival may start before it is dropped."""

    def __init__(self, executor: Executor, *, grace_s: float = 0.1) -> None:
        self.ex = executor
        self.grace_s = grace_s
        self._proc = psutil.Process()
        self._proc.cpu_percent(None)

    def run(
        self,
        stage: EngineStage,
        *,
        on_second: Callable[[SecondRaw], str | None] | None = None,
        should_stop: Callable[[], str | None] | None = None,
    ) -> StageRaw:
        """One stage from ``stage.start_wall`` (now by default): schedule, close seconds, drain, total up."""
        rate, duration_s, start_wall = stage.rate, stage.duration_s, stage.start_wall
        self.ex.prepare(stage.max_inflight)
        now_wall = time.time()
        base = time.perf_counter() + ((start_wall if start_wall is not None else now_wall) - now_wall)
        st = _stage_type(self.ex)(
            self.ex,
            base=base,
            nsec=stage_seconds(duration_s),
            duration_s=duration_s,
            warmup_s=stage.warmup_s,
            max_inflight=stage.max_inflight,
            grace=self.grace_s,
        )
        schedule = st.scheduler(rate, arrival=stage.arrival, shape=stage.shape, phase=stage.phase, seed=stage.seed)
        sched = gevent.spawn(schedule)
        seconds, stopped = self._close_seconds(st, on_second, should_stop)
        st.stop = True
        stop_offset = time.perf_counter() - st.base if stopped is not None else None
        ok_by_second = list(st.ok)
        load_stopped = time.time()
        sched.join(timeout=1.0)
        sched.kill(block=False)
        # let in-flight requests finish: fully on a normal end, briefly after an abort
        killed = st.drain(min(stage.drain_s, 0.5) if stopped is not None else stage.drain_s)
        if killed:
            self.ex.reset()
        st.finish_sessions()
        raw = st.result(seconds, stopped=stopped, load_stopped_wall=load_stopped)
        raw.flow_rates = st.flow_rates(rate)
        raw.stop_offset_s = stop_offset
        raw.ok_by_second = ok_by_second
        return raw

    def _close_seconds(
        self,
        st: Stage,
        on_second: Callable[[SecondRaw], str | None] | None,
        should_stop: Callable[[], str | None] | None,
    ) -> tuple[list[SecondRaw], str | None]:
        """Close each second a grace after it ends (its last arrivals may still be dropped till then)."""
        seconds: list[SecondRaw] = []
        stopped: str | None = None
        perf = time.perf_counter
        for k in range(st.nsec):
            end = st.base + min(k + 1, st.duration_s) + st.grace
            while (rem := end - perf()) > 0:
                if stopped is None and should_stop is not None:
                    stopped = should_stop()
                if stopped is not None:
                    break
                gevent.sleep(min(rem, 0.1))
            sec = st.close_second(k, final=stopped is not None, cpu_pct=self._proc.cpu_percent(None))
            seconds.append(sec)
            if on_second is not None and stopped is None:
                stopped = on_second(sec)
            if stopped is None and should_stop is not None:
                stopped = should_stop()
            if stopped is not None:
                break
        return seconds, stopped
