"""The search's stop rules, as pure functions of what the run has seen (unit-tested on their own).

A capacity search runs against a shared staging cluster: each rule here errs towards stopping. The
run object (``run.py``) applies them in order after every stage; nothing else decides to stop.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from capacity.core.models import StageResult
from capacity.core.outcomes import Cause, StopReason, Validity, Verdict, guard_stop


@dataclass(frozen=True)
class AfterStage:
    """What a stage's verdict means for the run before the strategy hears of it."""

    stop: str | None = None
    """``stopped_reason`` when the run must stop here."""
    warning: str | None = None
    judged: bool = True
    """False for an invalid stage: it says nothing about the target, so the strategy never hears of it."""


def over_budget(elapsed_s: float, stage_seconds: float, max_duration_s: float) -> bool:
    """Whether the next stage would end past the run's time budget (it is then not started)."""
    return elapsed_s + stage_seconds > max_duration_s


def budget_warning(max_duration_s: float) -> str:
    return f"stopped: the next stage would pass max_duration_s ({max_duration_s:g} s)"


_STOP_ON: dict[Cause, StopReason] = {
    Cause.GENERATOR: StopReason.GENERATOR,  # more load from here proves nothing
    Cause.TASK_DRIFT: StopReason.TASK_DRIFT,  # every later stage would measure a different cluster
    Cause.TEST_DATA: StopReason.TEST_DATA,
    Cause.AUTH: StopReason.AUTH,  # the token is refused: later stages would measure the auth service
}
"""Invalid stages that stop the run; a lost worker's (absent here) is set aside and the next stage runs on
the remaining workers, without a recovery wait (the target was not the problem)."""


def _invalid_warning(result: StageResult, cause: Cause) -> str:
    first = result.reasons[0] if result.reasons else None
    if cause is Cause.GENERATOR:
        return (
            f"stage {result.index} was limited by the load generator, not the target: add workers "
            "(--workers N) or remote workers and run again"
        )
    if cause is Cause.TEST_DATA:
        return (
            f"stage {result.index} ran out of test records: the run stopped (not a knee); add records "
            "(docs/test-data.md) or lower max_rps"
        )
    if cause is Cause.WORKER_LOST:
        return f"stage {result.index} lost a load worker"
    default = "the app task count changed" if cause is Cause.TASK_DRIFT else "requests refused"
    return f"stage {result.index}: {first or default}"


def after_stage(result: StageResult, *, interrupted: bool) -> AfterStage:
    """Interrupts stop at once; an invalid stage is never judged, and stops the run unless a worker was
    lost (:data:`_STOP_ON`)."""
    verdict = result.verdict
    if interrupted or verdict.validity is Validity.INTERRUPTED:
        return AfterStage(stop=StopReason.INTERRUPTED, judged=False)
    cause = verdict.cause
    if cause is None:
        return AfterStage()
    return AfterStage(stop=_STOP_ON.get(cause), warning=_invalid_warning(result, cause), judged=False)


def stops_on_failure(passed: bool, *, strategy: str, strategy_stop_reason: str | None) -> bool:
    """A failing stage ends a ramp or linear search (never go above a failing rate); the adaptive search
    narrows below it instead, unless its very first stage failed (then there is nothing below to search)."""
    if passed:
        return False
    return strategy != "adaptive" or strategy_stop_reason == StopReason.FIRST_STAGE_FAILED


def resolution_bound(results: Sequence[StageResult], first_breach: dict[int, str]) -> str:
    """The guard and rate that bounded a search ended on resolution from above (``stop_detail``), or ""."""
    fails = [r for r in results if r.verdict is Verdict.FAIL]
    if not fails:
        return ""
    return f"{guard_stop(first_breach.get(fails[0].index))} at {fails[0].target_rps:g}/s"
