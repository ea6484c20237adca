"""The test-data budget: how many records a plan could consume at worst, against how many there are.

A check-in uses up an appointment. A ramp to 4x the 1x peak can consume tens of thousands of fresh
appointments; running out mid-run turns the rest of the stage into errors that look like a knee. So
before the run the worst case is counted: every stage the plan may run (the ramp to ``max_rps``,
then the bisection stages at most at ``max_rps``, no more stages than ``max_duration_s`` allows),
each for its whole length (warm-up included) at the consuming endpoints' share of its rate, plus one
record per consuming endpoint for the smoke preflight. A flow run as sessions uses one record per
session however many of its calls consume (``Workload.consuming_share`` counts sessions, not calls).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from capacity.core.errors import ExperimentError
from capacity.plan.experiment import Experiment, StagePlanSettings
from capacity.plan.strategies import preview
from capacity.plan.testdata import load_records


@dataclass(frozen=True)
class RecordBudget:
    consuming: list[str]
    """Endpoints that use up a record per request."""
    share: float
    """Records used up per request sent (one per consuming request, one per consuming session)."""
    stage_rates: list[float]
    """The worst-case stages' rates (req/s)."""
    stage_seconds: float
    smoke: int
    needed: int
    available: int | None
    """Records the test data holds; None when it could not be read (dry run without the CSV)."""
    fitting_max_rps: float | None = None
    """When short: the highest ``max_rps`` whose worst case fits (None if not even ``start_rps`` fits)."""
    unreadable: str = ""

    @property
    def short(self) -> bool:
        return self.available is not None and self.needed > self.available

    def text(self) -> str:
        if not self.consuming:
            return "test data: no endpoint consumes records"
        have = f"{self.available:,}" if self.available is not None else f"unknown ({self.unreadable})"
        line = (
            f"test data: worst case {self.needed:,} records for {', '.join(self.consuming)} "
            f"({self.share:.1%} of the request rate: one per consuming session or request; "
            f"over {len(self.stage_rates)} stage(s) of {self.stage_seconds:g} s "
            f"+ {self.smoke} for the smoke preflight); available {have}"
        )
        if self.short:
            fit = f"max_rps {self.fitting_max_rps:g} fits" if self.fitting_max_rps else "no max_rps fits"
            line += f": {self.needed - (self.available or 0):,} short ({fit})"
        return line


def worst_case_rates(stages: StagePlanSettings) -> list[float]:
    """The rates of the stages a plan may run at worst, highest first."""
    p = preview(stages)
    rates = list(p.ramp_rates[: p.max_stages]) + [p.max_rps] * max(0, p.max_stages - len(p.ramp_rates))
    fit = max(1, math.floor(stages.max_duration_s / stages.stage_seconds + 1e-9))
    return sorted(rates, reverse=True)[:fit]


def records_needed(stages: StagePlanSettings, share: float, smoke: int) -> int:
    return math.ceil(sum(worst_case_rates(stages)) * stages.stage_seconds * share - 1e-9) + smoke


def fitting_max_rps(stages: StagePlanSettings, share: float, smoke: int, available: int) -> float | None:
    """The highest ``max_rps`` (to 0.1 req/s, at least ``start_rps``) whose worst case fits in ``available``."""

    def fits(max_rps: float) -> bool:
        return records_needed(stages.model_copy(update={"max_rps": max_rps}), share, smoke) <= available

    lo, hi = stages.start_rps, stages.max_rps
    if not fits(lo):
        return None
    while hi - lo > 0.1:
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if fits(mid) else (lo, mid)
    return math.floor(lo * 10) / 10


def record_budget(exp: Experiment, *, available: int | None = None, read: bool = True) -> RecordBudget:
    """The plan's worst case against the test data (read from the experiment's source unless given)."""
    wl = exp.workload
    consuming = [e.name for e in wl.endpoints if e.consumes] if not wl.locustfile else []
    share = wl.consuming_share if consuming else 0.0
    smoke = len(consuming)
    unreadable = ""
    if available is None and read and consuming:
        try:
            available = len(load_records(wl, exp.source_file))
        except ExperimentError as exc:
            unreadable = str(exc).split("': ", 1)[-1]  # the message without the file and key
    needed = records_needed(exp.stages, share, smoke) if consuming else 0
    fit = fitting_max_rps(exp.stages, share, smoke, available) if available is not None and needed > available else None
    return RecordBudget(
        consuming=consuming,
        share=share,
        stage_rates=worst_case_rates(exp.stages),
        stage_seconds=exp.stages.stage_seconds,
        smoke=smoke,
        needed=needed,
        available=available,
        fitting_max_rps=fit,
        unreadable=unreadable,
    )


def check_test_data_budget(exp: Experiment) -> RecordBudget:
    """Exit 2 before the run when the worst case needs more records than the test data holds."""
    budget = record_budget(exp)
    if budget.short:
        raise ExperimentError(budget.text(), file=exp.source_file, key="workload.test_data")
    return budget
