"""The open-model stage engine of one generator process: schedule, slots, exact histograms.

One gevent loop per process. A scheduler greenlet walks the precomputed arrival times; each due
arrival is handed to an idle slot greenlet (long-lived: spawning one per request costs ~15 us).
If no slot frees up within ``grace_s`` of the intended time, or the scheduler itself is that late
(a starved generator), the arrival is *dropped*: counted, never sent later in a burst. Latency runs
from the intended start, so a stalled target shows its full delay (no coordinated omission).

Per-second buckets count offered (by intended second), completions (by completion second) and
keep a small histogram that is summarised and freed as each second closes. Stage totals and
per-kind histograms cover arrivals whose intended start lies in the measured part.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import gevent
import locust  # noqa: F401  (gevent patching before ssl)
import psutil
from gevent.event import Event
from gevent.queue import Queue
from hdrh.histogram import HdrHistogram

from capacity.load.executors import EXHAUSTED, Executor
from capacity.load.schedule import Arrival, arrival_chunks, mix_chunks

HIGHEST_US = 3_600_000_000
"""Largest latency a histogram tracks (1 h, in microseconds); larger values are clamped."""


def stage_seconds(duration_s: float) -> int:
    """Whole seconds a stage of ``duration_s`` spans (a partial last second counts)."""
    return max(1, int(duration_s + 0.999999))


def drain_seconds(timeout_s: float) -> float:
    """How long in-flight requests may drain after arrivals stop: the request timeout and a margin."""
    return timeout_s + 0.5


def new_histogram(digits: int = 3) -> HdrHistogram:
    return HdrHistogram(1, HIGHEST_US, digits)


@dataclass
class SecondRaw:
    """One second of one generator process, before merging across workers."""

    k: int
    offered: int = 0
    ok: int = 0
    errors: int = 0
    dropped: int = 0
    inflight: int = 0
    cpu_pct: float | None = None
    hist: HdrHistogram = field(default_factory=lambda: new_histogram(2))


@dataclass
class StageRaw:
    """Totals of one process's stage (measured part only, except ``seconds``)."""

    ended_wall: float
    seconds: list[SecondRaw]
    requests: int
    ok: int
    errors: int
    dropped: int
    status_codes: dict[str, int]
    names: list[str]
    kind_requests: list[int]
    kind_errors: list[int]
    kind_hists: list[HdrHistogram]
    records_exhausted: int
    stopped: str | None
    load_stopped_wall: float = 0.0
    """When arrivals stopped (before in-flight requests drained): the end of the offered window."""


class StageEngine:
    """Runs stages for one executor. ``grace_s``: how late an arrival may start before it is dropped."""

    def __init__(self, executor: Executor, *, grace_s: float = 0.1) -> None:
        self.ex = executor
        self.grace_s = grace_s
        self._proc = psutil.Process()
        self._proc.cpu_percent(None)

    def run(
        self,
        *,
        rate: float,
        duration_s: float,
        warmup_s: float,
        arrival: Arrival = "uniform",
        max_inflight: int = 256,
        seed: int = 0,
        phase: float = 0.0,
        start_wall: float | None = None,
        drain_s: float = 10.0,
        on_second: Callable[[SecondRaw], str | None] | None = None,
        should_stop: Callable[[], str | None] | None = None,
    ) -> StageRaw:
        ex = self.ex
        ex.prepare(max_inflight)
        nsec = stage_seconds(duration_s)
        nk = len(ex.names)
        offered = [0] * (nsec + 1)
        dropped = [0] * (nsec + 1)
        okc = [0] * (nsec + 1)
        errc = [0] * (nsec + 1)
        infl = [0] * (nsec + 1)
        hists: list[HdrHistogram | None] = [None] * (nsec + 1)
        hists[0] = new_histogram(2)
        hists[nsec] = new_histogram(2)  # drain bucket
        if nsec > 1:
            hists[1] = new_histogram(2)
        kind_req = [0] * nk
        kind_err = [0] * nk
        kind_hist = [new_histogram(3) for _ in range(nk)]
        codes: dict[int | str, int] = {}
        exhausted_before = ex.records_exhausted
        q: Queue = Queue()
        slot_free = Event()
        st = _State()
        perf = time.perf_counter
        now_wall = time.time()
        if start_wall is None:
            start_wall = now_wall
        base = perf() + (start_wall - now_wall)
        grace = self.grace_s
        highest = HIGHEST_US

        def work() -> None:
            state = ex.new_state()
            execute = ex.execute
            get = q.get
            while True:
                item = get()
                if item is None:
                    return
                t_int, kind, measured = item
                code = execute(kind, state)
                now = perf()
                c = int(now - base)
                if c >= nsec:
                    c = nsec
                ok = isinstance(code, int) and code < 400
                if code is not EXHAUSTED:
                    lat = int((now - base - t_int) * 1e6)
                    if lat > highest:
                        lat = highest
                    elif lat < 1:
                        lat = 1
                    h = hists[c]
                    if h is not None:
                        h.record_value(lat)
                    if measured:
                        kind_hist[kind].record_value(lat)
                if ok:
                    okc[c] += 1
                else:
                    errc[c] += 1
                    if measured:
                        kind_err[kind] += 1
                if measured:
                    codes[code] = codes.get(code, 0) + 1
                st.busy -= 1
                if st.waiting:
                    slot_free.set()

        workers: list[gevent.Greenlet] = []

        def schedule() -> None:
            sleep = gevent.sleep
            put = q.put
            kinds_iter = mix_chunks(ex.weights, seed=seed + 7919)
            burst = 0
            for times in arrival_chunks(rate, duration_s, arrival=arrival, phase=phase, seed=seed):
                kinds = next(kinds_iter)
                for i, t in enumerate(times):
                    if st.stop:
                        return
                    now = perf() - base
                    if t > now:
                        sleep(t - now)
                        burst = 0
                        now = perf() - base
                    elif burst >= 64:
                        sleep(0)
                        burst = 0
                        now = perf() - base
                    k = int(t)
                    measured = t >= warmup_s
                    if st.busy >= max_inflight and now - t <= grace:
                        st.waiting = True
                        while st.busy >= max_inflight and not st.stop:
                            slot_free.clear()
                            left = grace - (perf() - base - t)
                            if left <= 0 or not slot_free.wait(left):
                                break
                        st.waiting = False
                        now = perf() - base
                    if now - t > grace or st.busy >= max_inflight:
                        dropped[k] += 1
                        if measured:
                            st.dropped += 1
                        continue
                    busy = st.busy + 1
                    st.busy = busy
                    if busy > len(workers):
                        workers.append(gevent.spawn(work))
                    if busy > infl[k]:
                        infl[k] = busy
                    offered[k] += 1
                    if measured:
                        st.requests += 1
                        kind_req[kinds[i]] += 1
                    put((t, kinds[i], measured))
                    burst += 1

        sched = gevent.spawn(schedule)
        seconds: list[SecondRaw] = []
        stopped: str | None = None
        for k in range(nsec):
            # close second k a grace after it ends: its last arrivals may still be dropped till then
            end = base + min(k + 1, duration_s) + grace
            while True:
                rem = end - perf()
                if rem <= 0:
                    break
                if stopped is None and should_stop is not None:
                    stopped = should_stop()
                if stopped is not None:
                    break
                gevent.sleep(min(rem, 0.1))
            if k + 2 < nsec:
                hists[k + 2] = new_histogram(2)
            h = hists[k]
            if k < nsec - 1 or stopped is not None:
                hists[k] = None
            sec = SecondRaw(
                k=k,
                offered=offered[k],
                ok=okc[k],
                errors=errc[k],
                dropped=dropped[k],
                inflight=max(infl[k], st.busy),
                cpu_pct=self._proc.cpu_percent(None),
                hist=h if h is not None else new_histogram(2),
            )
            seconds.append(sec)
            if on_second is not None and stopped is None:
                stopped = on_second(sec)
            if stopped is None and should_stop is not None:
                stopped = should_stop()
            if stopped is not None:
                break
        st.stop = True
        load_stopped = time.time()
        sched.join(timeout=1.0)
        sched.kill(block=False)
        # let in-flight requests finish: fully on a normal end, briefly after an abort
        deadline = perf() + (min(drain_s, 0.5) if stopped is not None else drain_s)
        while st.busy > 0 and perf() < deadline:
            gevent.sleep(0.02)
        killed = st.busy
        for _ in workers:
            q.put(None)
        if killed:
            gevent.killall(workers, block=True, timeout=1.0)
            ex.reset()
        else:
            gevent.joinall(workers, timeout=1.0)
        # completions during the drain are in the stage totals, not in any second: adding them to the
        # last second would inflate its goodput by the whole backlog of an overloaded stage
        status_codes: dict[str, int] = {str(c): n for c, n in codes.items()}
        if killed:
            status_codes["aborted"] = status_codes.get("aborted", 0) + killed
        total_ok = sum(n for c, n in codes.items() if isinstance(c, int) and c < 400)
        total_err = sum(codes.values()) - total_ok
        return StageRaw(
            ended_wall=time.time(),
            load_stopped_wall=load_stopped,
            seconds=seconds,
            requests=st.requests,
            ok=total_ok,
            errors=total_err,
            dropped=st.dropped,
            status_codes=status_codes,
            names=list(ex.names),
            kind_requests=kind_req,
            kind_errors=kind_err,
            kind_hists=kind_hist,
            records_exhausted=ex.records_exhausted - exhausted_before,
            stopped=stopped,
        )


class _State:
    __slots__ = ("busy", "dropped", "requests", "stop", "waiting")

    def __init__(self) -> None:
        self.busy = 0
        self.dropped = 0
        self.requests = 0
        self.stop = False
        self.waiting = False
