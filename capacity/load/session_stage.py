"""A stage whose arrivals start sessions: the open-model session starts, then each step on its answer.

Session starts are arrivals like any other (precomputed times, an exact mix of independent requests
and one kind per session flow, at the stage's request rate times the plan's arrivals-per-request
ratio). A session is a small ``Session`` record, never a greenlet: a slot that gets a step's answer
either hands the session's next call straight back to the queue (no think time) or puts it on a
timer heap the scheduler walks together with the arrival times, so thinking sessions hold no slot.
Every call is a request with its own intended start (the previous answer plus the think time), so
per-second offered, drops and latencies mean what they mean without sessions. A step that fails (an
error status, a transport error, a missing extracted value, no free slot) ends its session as failed
at that step; a session whose next call would fall after the stage's end, or that is in flight or
waiting when the stage stops, is counted unfinished.
"""

from __future__ import annotations

import heapq
import random
import time
from collections.abc import Callable
from itertools import count
from typing import Any

import gevent
from gevent.event import Event

from capacity.load.executors import EXHAUSTED
from capacity.load.raw import HIGHEST_US, FlowRaw, PartRaw
from capacity.load.schedule import Arrival, Shape, arrival_chunks, mix_chunks
from capacity.load.session_auth import SessionTokens
from capacity.load.session_plan import Session, SessionPlan
from capacity.load.stage_state import Stage

Item = tuple[float, int, int, Session | None]
"""(intended start, request kind, per-kind index ``j``, the session or None for an independent request)."""


class SessionStage(Stage):
    """One stage's counters plus its sessions' (per flow and part: index ``flow + F * measured``)."""

    def __init__(self, ex: Any, **kw: Any) -> None:
        super().__init__(ex, **kw)
        self.plan: SessionPlan = ex.sessions
        self.nf = len(self.plan.flows)
        self.flows = [FlowRaw(f.name, len(f.steps)) for _ in range(2) for f in self.plan.flows]
        self.timers: list[tuple[float, int, int, int, Session]] = []
        self.seq = count()
        self.wake = Event()
        self.sleep_until = float("inf")
        self.active: set[Session] = set()
        self.rng = random.Random(0)
        self.execute_step: Callable[..., int | str] = ex.execute_step
        self.tokens: SessionTokens | None = getattr(ex, "session_tokens", None)
        """``[target.auth] scope = "session"``: each session's first call waits for its own token."""

    def rate_of(self, rate: float) -> float:
        return rate * self.plan.ratio

    def flow_rates(self, rate: float) -> list[float]:
        return [self.rate_of(rate) * s for s in self.plan.session_share]

    # -- a session's steps ------------------------------------------------------------------------

    def after(self, sess: Session, code: int | str, now: float) -> None:
        """A step's answer came at ``now`` (s from the stage's start): next call, or the session ends."""
        prog = self.plan.flows[sess.flow]
        fr = self.flows[sess.flow + self.nf * sess.measured]
        if not (isinstance(code, int) and code < 400) or code is EXHAUSTED:
            self.active.discard(sess)
            fr.failed += 1
            fr.failed_at[sess.step] += 1
            return
        rng = self.rng
        sess.left -= 1
        while sess.left <= 0:
            sess.step += 1
            if sess.step >= len(prog.steps):
                self.active.discard(sess)
                fr.completed += 1
                fr.hist.record_value(min(HIGHEST_US, max(1, int((now - sess.t0) * 1e6))))
                return
            sess.left = prog.steps[sess.step].calls(rng)
        step = prog.steps[sess.step]
        t = now + step.pause(rng)
        if t >= self.duration_s or self.stop:
            return  # still active: counted unfinished when the stage ends
        kind = step.kind
        j = kind + self.nk if t >= self.warmup_s else kind
        heapq.heappush(self.timers, (t, next(self.seq), kind, j, sess))
        if t < self.sleep_until:
            self.wake.set()

    def token_came(self, sess: object, headers: dict[str, str] | None) -> None:
        """A session's token arrived (or failed): its first call is due now, or it fails at its first step."""
        assert isinstance(sess, Session)
        if self.stop or sess not in self.active:
            return
        if headers is None:
            self.step_dropped(sess)
            return
        sess.headers = headers
        t = time.perf_counter() - self.base
        if t >= self.duration_s:
            return  # counted unfinished at the stage's end
        kind = self.plan.flows[sess.flow].steps[sess.step].kind
        heapq.heappush(self.timers, (t, next(self.seq), kind, kind + self.nk if t >= self.warmup_s else kind, sess))
        if t < self.sleep_until:
            self.wake.set()

    def start_session(self, sess: Session, t: float, now: float, work: Callable[[], None]) -> None:
        """Send a new session's first call (or queue it for its token); count it started or dropped."""
        nk = self.nk
        self.first_calls(sess)
        fr = self.flows[sess.flow + self.nf * sess.measured]
        if sess.left <= 0:  # fractional counts drew no call at all: a session with nothing to send
            fr.started += 1
            fr.completed += 1
            fr.hist.record_value(1)
            return
        tokens = self.tokens
        if tokens is not None:
            if tokens.waiting >= self.max_inflight:
                fr.dropped += 1  # the token service is this far behind: the session cannot start
                return
            fr.started += 1
            self.active.add(sess)
            tokens.request(sess, self.token_came)
            return
        kind = self.plan.flows[sess.flow].steps[sess.step].kind
        if self.admit((t, kind, kind + nk * sess.measured, sess), now, work):
            fr.started += 1
            self.active.add(sess)
        else:
            fr.dropped += 1

    def first_calls(self, sess: Session) -> None:
        if sess.left < 0:
            sess.left = self.plan.flows[sess.flow].steps[0].calls(self.rng)
            while sess.left <= 0 and sess.step + 1 < len(self.plan.flows[sess.flow].steps):
                sess.step += 1
                sess.left = self.plan.flows[sess.flow].steps[sess.step].calls(self.rng)

    def session_hooks(self) -> tuple[Any, Any, Any]:
        return self.plan.flows, self.execute_step, self.after

    # -- the scheduler ------------------------------------------------------------------------------

    def admit(self, item: Item, now: float, work: Callable[[], None]) -> bool:
        """Hand ``item`` to a free slot (waiting up to the grace), or drop it; True when sent."""
        t = item[0]
        grace, max_inflight = self.grace, self.max_inflight
        if self.busy >= max_inflight and now - t <= grace:
            now = self.wait_for_slot(t)
        k = int(t)
        j = item[2]
        if now - t > grace or self.busy >= max_inflight:
            self.dropped[k] += 1
            self.part_dropped[1 if j >= self.nk else 0] += 1
            return False
        busy = self.busy + 1
        self.busy = busy
        if busy > len(self.workers):
            self.workers.append(gevent.spawn(work))
        if busy > self.inflight[k]:
            self.inflight[k] = busy
        self.offered[k] += 1
        self.kind_req[j] += 1
        self.queue.put(item)
        return True

    def wait_until(self, t: float, work: Callable[[], None]) -> bool:
        """Sleep until ``t``, sending every session call that falls due first; False when stopped."""
        perf, base, timers, wake = time.perf_counter, self.base, self.timers, self.wake
        while True:
            if self.stop:
                return False
            now = perf() - base
            if timers and timers[0][0] <= now and timers[0][0] <= t:
                due, _, kind, j, sess = heapq.heappop(timers)
                if not self.admit((due, kind, j, sess), now, work):
                    self.step_dropped(sess)
                continue
            if t <= now:
                return True
            until = min(t, timers[0][0]) if timers else t
            self.sleep_until = until
            wake.clear()
            wake.wait(until - now)
            self.sleep_until = float("inf")

    def step_dropped(self, sess: Session) -> None:
        self.active.discard(sess)
        fr = self.flows[sess.flow + self.nf * sess.measured]
        fr.failed += 1
        fr.failed_at[sess.step] += 1

    def scheduler(self, rate: float, *, arrival: Arrival, shape: Shape, phase: float, seed: int) -> Callable[[], None]:
        """Session starts and independent requests at their arrival times, session calls when due."""
        work = self.slot_loop()
        nk = self.nk
        self.rng = random.Random(seed + 104729)
        if self.tokens is not None:
            self.tokens.start()

        def schedule() -> None:
            # sessions are fewer arrivals than requests: exact shares over blocks of 32 session starts
            kinds_iter = mix_chunks(self.ex.weights, seed=seed + 7919, block=32)
            for times in arrival_chunks(
                self.rate_of(rate), self.duration_s, arrival=arrival, shape=shape, phase=phase, seed=seed
            ):
                kinds = next(kinds_iter)
                for i, t in enumerate(times):
                    if not self.wait_until(t, work):
                        return
                    now = time.perf_counter() - self.base
                    measured = 1 if t >= self.warmup_s else 0
                    a = kinds[i]
                    if a < nk:
                        self.admit((t, a, a + nk * measured, None), now, work)
                        continue
                    self.start_session(Session(a - nk, t, measured), t, now, work)
            self.wait_until(self.duration_s, work)

        return schedule

    def censor(self, at: float) -> int:
        """Requests in flight at the stop as in the base stage; every session still running is unfinished."""
        n = super().censor(at)
        self.finish_sessions()
        return n

    def finish_sessions(self) -> None:
        """At the stage's end: sessions whose next call fell after it (or still waiting) are unfinished."""
        if self.tokens is not None:
            self.tokens.stop()
        for sess in self.active:
            self.flows[sess.flow + self.nf * sess.measured].unfinished += 1
        self.active.clear()
        self.timers.clear()

    def part(self, b: int) -> PartRaw:
        out = super().part(b)
        out.flows = self.flows[b * self.nf : (b + 1) * self.nf]
        return out
