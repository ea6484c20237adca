"""The outcome vocabulary: what a stage's verdict, a breach's rule and a run's stop can be.

``StrEnum`` members, so a value on disk is the same string it always was (``"invalid: generator"``,
``"guard:p95"``) and old results still load, while code compares members and reads fields
(``verdict.validity``, ``verdict.cause``) instead of testing text.
"""

from __future__ import annotations

from enum import StrEnum


class Validity(StrEnum):
    """Whether a stage says anything about the target."""

    VALID = "valid"
    """Judged: it passed or failed its guards."""
    INVALID = "invalid"
    """Something other than the target limited it (``Verdict.cause`` says what): never capacity, never a knee."""
    INTERRUPTED = "interrupted"
    """Cut short by the user: kept on disk, never judged."""


class Cause(StrEnum):
    """What made a stage invalid."""

    GENERATOR = "generator"
    WORKER_LOST = "worker lost"
    TASK_DRIFT = "task drift"
    """The app task count changed during the stage (``capacity scale``)."""
    TEST_DATA = "test data"
    AUTH = "auth"
    """More auth failures than ``[target.auth] max_auth_failure_ratio``."""


class Verdict(StrEnum):
    """A stage's verdict as stored (``StageResult.verdict``); read ``validity`` and ``cause``, not its text."""

    PASS = "pass"
    FAIL = "fail"
    INVALID_GENERATOR = "invalid: generator"
    INVALID_WORKER_LOST = "invalid: worker lost"
    INVALID_TASK_DRIFT = "invalid: task drift"
    INVALID_TEST_DATA = "invalid: test data"
    INVALID_AUTH = "invalid: auth"
    INTERRUPTED = "interrupted"

    @classmethod
    def invalid(cls, cause: Cause) -> Verdict:
        return cls(f"invalid: {cause.value}")

    @property
    def validity(self) -> Validity:
        if self is Verdict.INTERRUPTED:
            return Validity.INTERRUPTED
        return Validity.VALID if self in (Verdict.PASS, Verdict.FAIL) else Validity.INVALID

    @property
    def cause(self) -> Cause | None:
        return _CAUSES.get(self)

    @property
    def is_valid(self) -> bool:
        """Judged against the guards: the only stages that can set capacity or be a knee."""
        return self.validity is Validity.VALID


_CAUSES = {Verdict.invalid(c): c for c in Cause}


class GuardCode(StrEnum):
    """The rule a breach broke (``Breach.code``); ``guard:<code>`` is the stop reason it gives."""

    # client-side, over a sliding window and the whole stage (judge/guards.py)
    GENERATOR = "generator"
    ERRORS = "errors"
    P95 = "p95"
    P99 = "p99"
    DROPPED = "dropped"
    GOODPUT = "goodput"
    NO_TRAFFIC = "no-traffic"
    SESSION_P95 = "session-p95"
    SESSION_FAILED = "session-failed"
    # server metrics (judge/server_guards.py)
    CPU = "cpu"
    SIDEKIQ_CPU = "sidekiq_cpu"
    MEMORY = "memory"
    POOL = "pool"
    BACKLOG = "backlog"
    QUEUE_LATENCY = "queue_latency"
    QUEUE_GROWTH = "queue_growth"
    # the stage's own health (judge/verdict.py)
    WORKER_LOST = "worker-lost"
    # between stages, while waiting for the target to recover (judge/recovery.py)
    RECOVERY_LATENCY = "latency"
    RECOVERY_QUEUE = "queue"


class StopReason(StrEnum):
    """Why a run stopped (``RunSummary.stopped_reason``); a guard stop is ``guard:<GuardCode>``."""

    DONE = "done"
    INTERRUPTED = "interrupted"
    ERROR = "error"
    MAX_RPS = "max_rps"
    MAX_STAGES = "max_stages"
    MAX_DURATION = "max_duration"
    RESOLUTION = "resolution"
    FIRST_STAGE_FAILED = "first_stage_failed"
    NO_RECOVERY = "no-recovery"
    GENERATOR = "generator"
    TASK_DRIFT = "task-drift"
    TEST_DATA = "test-data"
    AUTH = "auth"
    GUARD = "guard"
    """A failing stage whose first breach had no code; otherwise the reason is :func:`guard_stop`."""


def guard_stop(code: str | None) -> str:
    """``guard:<code>`` for the guard that failed a stage first (p95, errors, goodput, queue...)."""
    return f"{StopReason.GUARD.value}:{code}" if code else StopReason.GUARD.value
