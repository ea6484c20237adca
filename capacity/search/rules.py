"""The search's stop rules, as pure functions of what the run has seen (unit-tested on their own).

A capacity search runs against a shared staging cluster: each rule here errs towards stopping. The
run object (``run.py``) applies them in order after every stage; nothing else decides to stop.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from capacity.models import StageResult

FIRST_STAGE_FAILED = "first_stage_failed"


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


def after_stage(result: StageResult, *, interrupted: bool) -> AfterStage:
    """Interrupts stop at once; a generator-bound stage stops the run (more load from here proves nothing);
    a lost worker's stage is set aside and the next stage runs on the remaining workers."""
    if interrupted or result.verdict == "interrupted":
        return AfterStage(stop="interrupted", judged=False)
    if result.verdict == "invalid: generator":
        return AfterStage(
            stop="generator",
            warning=f"stage {result.index} was limited by the load generator, not the target: add workers "
            "(--workers N) or remote workers and run again",
            judged=False,
        )
    if result.verdict == "invalid: task drift":
        # the cluster under test changed mid-stage: every later stage would measure a different cluster
        return AfterStage(
            stop="task-drift",
            warning=f"stage {result.index}: {result.reasons[0] if result.reasons else 'the app task count changed'}",
            judged=False,
        )
    if result.verdict == "invalid: test data":
        return AfterStage(
            stop="test-data",
            warning=f"stage {result.index} ran out of test records: the run stopped (not a knee); add records "
            "(docs/test-data.md) or lower max_rps",
            judged=False,
        )
    if result.verdict == "invalid: auth":
        # the token is refused: every later stage would measure the auth service, not the target
        return AfterStage(
            stop="auth",
            warning=f"stage {result.index}: {result.reasons[0] if result.reasons else 'requests refused'}",
            judged=False,
        )
    if result.verdict == "invalid: worker lost":
        # set aside: the next stage runs on the remaining workers, without a recovery wait (the target
        # was not the problem)
        return AfterStage(warning=f"stage {result.index} lost a load worker", judged=False)
    return AfterStage()


def guard_reason(code: str | None) -> str:
    """``guard:<code>`` for the guard that failed a stage first (p95, errors, goodput, queue...)."""
    return f"guard:{code}" if code else "guard"


def stops_on_failure(passed: bool, *, strategy: str, strategy_stop_reason: str | None) -> bool:
    """A failing stage ends a ramp or linear search (never go above a failing rate); the adaptive search
    narrows below it instead, unless its very first stage failed (then there is nothing below to search)."""
    if passed:
        return False
    return strategy != "adaptive" or strategy_stop_reason == FIRST_STAGE_FAILED


def final_reason(stopped_reason: str, results: Sequence[StageResult], first_breach: dict[int, str]) -> str:
    """A search that ended on resolution names the guard and rate that bounded it from above."""
    if stopped_reason != "resolution":
        return stopped_reason
    fails = [r for r in results if r.verdict == "fail"]
    if not fails:
        return stopped_reason
    return f"resolution ({guard_reason(first_breach.get(fails[0].index))} at {fails[0].target_rps:g}/s)"
