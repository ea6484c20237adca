"""One stage's counters and greenlets: the scheduler, the long-lived slots, closing seconds, censoring.

The engine (``capacity.load.engine``) runs a ``Stage``; a stage whose flows run as sessions is a
``SessionStage`` (``capacity.load.session_stage``), which shares these counters.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import gevent
from gevent.event import Event
from gevent.queue import Empty, Queue
from hdrh.histogram import HdrHistogram

from capacity.load.executors import EXHAUSTED, Executor
from capacity.load.raw import HIGHEST_US, UNFINISHED, PartRaw, SecondRaw, StageRaw, new_histogram
from capacity.load.schedule import Arrival, Shape, arrival_chunks, mix_chunks


class Stage:
    """One stage's counters, shared by the scheduler greenlet, the slot greenlets and the closer.

    Per-second lists are indexed by whole second ``k`` (bucket ``nsec`` takes completions after the
    stage's end); the per-second histograms of seconds ``k`` and ``k + 1`` exist, the rest are
    created two seconds ahead and freed as each second closes. Per-kind lists hold the warm-up's
    kinds, then the measured part's: index ``j = kind`` or ``kind + nk`` (``nk`` request kinds).
    ``current[i]`` is the arrival slot ``i`` is serving (None when idle).
    """

    def __init__(
        self,
        ex: Executor,
        *,
        base: float,
        nsec: int,
        duration_s: float,
        warmup_s: float,
        max_inflight: int,
        grace: float,
    ) -> None:
        self.ex = ex
        self.base = base
        self.nsec = nsec
        self.duration_s = duration_s
        self.warmup_s = warmup_s
        self.max_inflight = max_inflight
        self.grace = grace
        n = nsec + 1
        self.offered = [0] * n
        self.dropped = [0] * n
        self.ok = [0] * n
        self.errors = [0] * n
        self.inflight = [0] * n
        self.hists: list[HdrHistogram | None] = [None] * n
        for k in {0, min(1, nsec), nsec}:
            self.hists[k] = new_histogram(2)
        self.nk = nk = len(ex.names)
        self.kind_req = [0] * (2 * nk)
        self.kind_err = [0] * (2 * nk)
        self.kind_unf = [0] * (2 * nk)
        self.kind_hist = [new_histogram(3) for _ in range(2 * nk)]
        self.codes: tuple[dict[int | str, int], dict[int | str, int]] = ({}, {})
        self.part_dropped = [0, 0]
        self.current: list[tuple[Any, ...] | None] = []
        self.busy = 0
        self.exhausted = 0
        self.stop = False
        self.waiting = False
        self.queue: Queue[tuple[Any, ...] | None] = Queue()
        self.slot_free = Event()
        self.workers: list[gevent.Greenlet] = []

    def session_hooks(self) -> tuple[Any, Any, Any]:
        """(the plan's flows, ``execute_step``, ``after``) when items carry sessions; none in a plain stage."""
        return None, None, None

    def slot_loop(self) -> Callable[[], None]:
        """The body of one long-lived slot greenlet (hot path: locals only, no per-request allocation).

        One loop for both stages: an item's session (None in a plain stage) picks ``execute_step`` over
        ``execute`` and gets its answer in ``after``; two ``is None`` tests, no call added per request."""
        ex, hists, kind_hist, okc, errc, kind_err, codes, current = (
            self.ex,
            self.hists,
            self.kind_hist,
            self.ok,
            self.errors,
            self.kind_err,
            self.codes,
            self.current,
        )
        perf, base, nsec, nk, highest, get, slot_free = (
            time.perf_counter,
            self.base,
            self.nsec,
            self.nk,
            HIGHEST_US,
            self.queue.get,
            self.slot_free,
        )
        plan_flows, execute_step, after = self.session_hooks()

        def work() -> None:
            state = ex.new_state()
            execute = ex.execute
            i = len(current)
            current.append(None)
            while True:
                item = get()
                if item is None:
                    return
                current[i] = item
                t_int, kind, j, sess = item
                if sess is None:
                    code = execute(kind, state)
                else:
                    code = execute_step(plan_flows[sess.flow].steps[sess.step], sess, state)
                current[i] = None  # no yield from here to the loop's end: a kill cannot split the record
                now = perf()
                c = int(now - base)
                if c >= nsec:
                    c = nsec
                if code is not EXHAUSTED:
                    lat = int((now - base - t_int) * 1e6)
                    if lat > highest:
                        lat = highest
                    elif lat < 1:
                        lat = 1
                    h = hists[c]
                    if h is not None:
                        h.record_value(lat)
                    kind_hist[j].record_value(lat)
                else:
                    self.exhausted += 1
                if isinstance(code, int) and code < 400:
                    okc[c] += 1
                else:
                    errc[c] += 1
                    kind_err[j] += 1
                part = codes[1] if j >= nk else codes[0]
                part[code] = part.get(code, 0) + 1
                if sess is not None:
                    after(sess, code, now - base)
                self.busy -= 1
                if self.waiting:
                    slot_free.set()

        return work

    def scheduler(self, rate: float, *, arrival: Arrival, shape: Shape, phase: float, seed: int) -> Callable[[], None]:
        """The scheduler greenlet's body: hand each due arrival to a free slot, or drop it (hot path)."""
        ex, workers, infl, offered, dropped, kind_req, part_dropped = (
            self.ex,
            self.workers,
            self.inflight,
            self.offered,
            self.dropped,
            self.kind_req,
            self.part_dropped,
        )
        perf, base, grace, warmup_s, max_inflight, nk = (
            time.perf_counter,
            self.base,
            self.grace,
            self.warmup_s,
            self.max_inflight,
            self.nk,
        )
        work = self.slot_loop()

        def schedule() -> None:
            sleep = gevent.sleep
            put = self.queue.put
            kinds_iter = mix_chunks(ex.weights, seed=seed + 7919)
            burst = 0
            for times in arrival_chunks(rate, self.duration_s, arrival=arrival, shape=shape, phase=phase, seed=seed):
                kinds = next(kinds_iter)
                for i, t in enumerate(times):
                    if self.stop:
                        return
                    now = perf() - base
                    if t > now:
                        sleep(t - now)
                        burst = 0
                        now = perf() - base
                        if self.stop:
                            return
                    elif burst >= 64:
                        sleep(0)
                        burst = 0
                        now = perf() - base
                    k = int(t)
                    measured = 1 if t >= warmup_s else 0
                    if self.busy >= max_inflight and now - t <= grace:
                        now = self.wait_for_slot(t)
                    if now - t > grace or self.busy >= max_inflight:
                        dropped[k] += 1
                        part_dropped[measured] += 1
                        continue
                    busy = self.busy + 1
                    self.busy = busy
                    if busy > len(workers):
                        workers.append(gevent.spawn(work))
                    if busy > infl[k]:
                        infl[k] = busy
                    offered[k] += 1
                    kind = kinds[i]
                    j = kind + nk if measured else kind
                    kind_req[j] += 1
                    put((t, kind, j, None))
                    burst += 1

        return schedule

    def wait_for_slot(self, t: float) -> float:
        """Every slot is busy: wait for one to free up, at most until ``t`` plus the grace; returns the time
        (s from the stage's start). Called only at the in-flight cap, where the scheduler waits anyway."""
        grace, max_inflight, slot_free, base, perf = (
            self.grace,
            self.max_inflight,
            self.slot_free,
            self.base,
            time.perf_counter,
        )
        self.waiting = True
        while self.busy >= max_inflight and not self.stop:
            slot_free.clear()
            left = grace - (perf() - base - t)
            if left <= 0 or not slot_free.wait(left):
                break
        self.waiting = False
        return perf() - base

    def finish_sessions(self) -> None:
        """Sessions still running at the stage's end are counted unfinished (none without sessions)."""

    def flow_rates(self, rate: float) -> list[float]:
        """Planned sessions/s per session flow at request rate ``rate`` (none without sessions)."""
        return []

    def close_second(self, k: int, *, final: bool, cpu_pct: float | None) -> SecondRaw:
        """Second ``k``'s counts; frees its histogram (unless it is the last, which the drain may still add to)."""
        if k + 2 < self.nsec:
            self.hists[k + 2] = new_histogram(2)
        h = self.hists[k]
        if k < self.nsec - 1 or final:
            self.hists[k] = None
        return SecondRaw(
            k=k,
            offered=self.offered[k],
            ok=self.ok[k],
            errors=self.errors[k],
            dropped=self.dropped[k],
            inflight=max(self.inflight[k], self.busy),
            cpu_pct=cpu_pct,
            hist=h if h is not None else new_histogram(2),
        )

    def drain(self, timeout_s: float) -> int:
        """Wait up to ``timeout_s`` for in-flight requests, then stop the slots; returns how many were
        killed (each recorded as unfinished, with the time it had waited when the slots were stopped)."""
        deadline = time.perf_counter() + timeout_s
        while self.busy > 0 and time.perf_counter() < deadline:
            gevent.sleep(0.02)
        for _ in self.workers:
            self.queue.put(None)
        if not self.busy:
            gevent.joinall(self.workers, timeout=1.0)
            return 0
        killed_at = time.perf_counter()
        gevent.killall(self.workers, block=True, timeout=1.0)
        return self.censor(killed_at)

    def censor(self, at: float) -> int:
        """Per stage, not per request: each arrival still held by a (killed) slot or still queued for one
        enters its kind's histogram with its wait up to ``at`` (a lower bound) and counts as unfinished."""
        pending = [item for item in self.current if item is not None]
        while True:
            try:
                item = self.queue.get_nowait()
            except Empty:
                break
            if item is not None:
                pending.append(item)
        for item in pending:
            t, j = item[0], item[2]
            lat = min(HIGHEST_US, max(1, int((at - self.base - t) * 1e6)))
            self.kind_hist[j].record_value(lat)
            self.kind_unf[j] += 1
            part = self.codes[1 if j >= self.nk else 0]
            part[UNFINISHED] = part.get(UNFINISHED, 0) + 1
        self.current[:] = [None] * len(self.current)
        return len(pending)

    def part(self, b: int) -> PartRaw:
        """Part ``b`` (0 warm-up, 1 measured) of the stage's arrivals."""
        sl = slice(b * self.nk, (b + 1) * self.nk)
        return PartRaw(
            requests=self.kind_req[sl],
            errors=self.kind_err[sl],
            unfinished=self.kind_unf[sl],
            hists=self.kind_hist[sl],
            status_codes={str(c): n for c, n in self.codes[b].items()},
            dropped=self.part_dropped[b],
        )

    def result(self, seconds: list[SecondRaw], *, stopped: str | None, load_stopped_wall: float) -> StageRaw:
        """The stage's outcome. Completions during the drain count in the parts, not in any second: adding
        them to the last second would inflate its goodput by the whole backlog of an overloaded stage."""
        return StageRaw(
            ended_wall=time.time(),
            load_stopped_wall=load_stopped_wall,
            seconds=seconds,
            names=list(self.ex.names),
            warmup=self.part(0),
            measured=self.part(1),
            records_exhausted=self.exhausted,
            stopped=stopped,
        )
