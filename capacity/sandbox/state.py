"""What the stand-in's database and Redis hold: known appointments, check-ins, statuses, the job queue.

Shared by all app tasks (it lives in the supervisor), so a second check-in of an appointment is a
409 whichever task serves it. Pure data structures: no I/O.
"""

from __future__ import annotations

import time
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from typing import Any

from capacity.sandbox.records import Record, synthetic_records

MAX_PATIENTS = 100_000
"""Demographics statuses kept (least recently used dropped): any DFN is accepted, memory stays bounded."""
MAX_QUEUE = 1_000_000
"""Jobs waiting beyond this are dropped: the queue may grow, not without bound."""


@dataclass
class ClinicData:
    """Synthetic appointments from ``synthetic_records(seed, count)`` plus what requests changed."""

    seed: int
    count: int
    appointments: dict[str, Record] = field(init=False)
    checked_in: dict[str, float] = field(default_factory=dict)
    statuses: OrderedDict[str, dict[str, Any]] = field(default_factory=OrderedDict)
    journeys: Journeys = field(default_factory=lambda: Journeys())

    def __post_init__(self) -> None:
        self.appointments = {r.ien: r for r in synthetic_records(self.seed, self.count)}

    def appointment(self, ien: str) -> Record | None:
        return self.appointments.get(ien)

    def check_in(self, ien: str) -> bool:
        """Mark checked in; False when it already was."""
        if ien in self.checked_in:
            return False
        self.checked_in[ien] = time.time()
        return True

    def status(self, dfn: str) -> dict[str, Any]:
        st = self.statuses.get(dfn)
        if st is None:
            return {"demographicsNeedsUpdate": True, "demographicsConfirmedAt": None, "confirmation": {}}
        self.statuses.move_to_end(dfn)
        return st

    def set_status(self, dfn: str, payload: dict[str, Any]) -> dict[str, Any]:
        st = {
            "demographicsNeedsUpdate": False,
            "demographicsConfirmedAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "confirmation": payload,
        }
        self.statuses[dfn] = st
        self.statuses.move_to_end(dfn)
        while len(self.statuses) > MAX_PATIENTS:
            self.statuses.popitem(last=False)
        return st


@dataclass
class Journeys:
    """Which calls each appointment saw, in order, so a test can tell sessions from unrelated requests.

    A check-in is *whole* when, before it, the same appointment's summary was stored for the same
    patient (the bodies' ``patientDfn`` match the appointment's) and that patient's demographics status
    was read before the summary: the order CHIP sends a check-in in."""

    seq: int = 0
    status_reads: OrderedDict[str, int] = field(default_factory=OrderedDict)
    calls: dict[str, list[tuple[int, str, str]]] = field(default_factory=dict)
    """Appointment -> (sequence, call, patient DFN the body named) per call."""
    checkins: int = 0
    whole: int = 0
    broken: list[str] = field(default_factory=list)
    """Appointments (the first 50) whose check-in was not whole, with why."""

    def _next(self) -> int:
        self.seq += 1
        return self.seq

    def status_read(self, dfn: str) -> None:
        self.status_reads[dfn] = self._next()
        self.status_reads.move_to_end(dfn)
        while len(self.status_reads) > MAX_PATIENTS:
            self.status_reads.popitem(last=False)

    def call(self, rec: Record, name: str, body_dfn: str | None) -> None:
        """An answered ``summary``/``checkin`` of appointment ``rec`` whose body named ``body_dfn``."""
        seq = self._next()
        seen = self.calls.setdefault(rec.ien, [])
        seen.append((seq, name, body_dfn or ""))
        if name != "checkin":
            return
        self.checkins += 1
        why = self._why_not_whole(rec, seen[:-1], body_dfn)
        if why is None:
            self.whole += 1
        elif len(self.broken) < 50:
            self.broken.append(f"{rec.ien}: {why}")

    def _why_not_whole(self, rec: Record, before: list[tuple[int, str, str]], body_dfn: str | None) -> str | None:
        summaries = [(s, d) for s, n, d in before if n == "summary"]
        if not summaries:
            return "no summary before the check-in"
        s_seq, s_dfn = summaries[-1]
        if s_dfn != rec.dfn or body_dfn != rec.dfn:
            return f"patient differs (appointment {rec.dfn}, summary {s_dfn}, check-in {body_dfn})"
        read = self.status_reads.get(rec.dfn)
        if read is None or read > s_seq:
            return "no demographics status read of the patient before the summary"
        return None

    def report(self) -> dict[str, Any]:
        return {
            "checkins": self.checkins,
            "whole": self.whole,
            "broken": list(self.broken),
            "appointments": len(self.calls),
            "calls": {
                name: sum(1 for c in self.calls.values() for _, n, _ in c if n == name)
                for name in ("summary", "checkin")
            },
        }


@dataclass
class JobQueue:
    """A FIFO of (enqueue time, job id), like Sidekiq's ``default`` queue in Redis."""

    waiting: deque[tuple[float, int]] = field(default_factory=deque)
    next_id: int = 1
    in_flight: int = 0
    enqueued: int = 0
    processed: int = 0
    failed: int = 0

    def push(self, now: float) -> int | None:
        if len(self.waiting) >= MAX_QUEUE:
            return None
        job_id = self.next_id
        self.next_id += 1
        self.waiting.append((now, job_id))
        self.enqueued += 1
        return job_id

    def pop(self) -> int:
        self.in_flight += 1
        return self.waiting.popleft()[1]

    def done(self, ok: bool) -> None:
        self.in_flight = max(0, self.in_flight - 1)
        self.processed += 1
        if not ok:
            self.failed += 1

    def latency(self, now: float) -> float:
        """Age of the oldest waiting job in seconds (Sidekiq's queue latency)."""
        return max(0.0, now - self.waiting[0][0]) if self.waiting else 0.0

    def take_counts(self) -> tuple[int, int, int]:
        """(processed, failed, enqueued) since the previous call."""
        out = (self.processed, self.failed, self.enqueued)
        self.processed = self.failed = self.enqueued = 0
        return out


@dataclass
class ArrivalWindow:
    """Arrival times over the last ``window_s`` seconds: the recent arrival rate the fault option watches."""

    window_s: float = 1.0
    times: deque[float] = field(default_factory=deque)

    def add(self, now: float) -> int:
        """Record one arrival at ``now`` (monotonic seconds); the arrivals in ``(now - window_s, now]``."""
        self.times.append(now)
        edge = now - self.window_s
        while self.times and self.times[0] <= edge:
            self.times.popleft()
        return len(self.times)
