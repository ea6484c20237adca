"""Late metrics: fetch again the stages whose server metrics were incomplete, keep what is better.

CloudWatch-based ``aws.ecs.service.*`` metrics arrive 10-20 minutes after the fact, so a stage
judged at its end often lacks them. Both the catch-up pass at the end of a search and
``capacity metrics backfill`` use this one routine, so they agree on which stages to fetch again and
on what counts as a better fetch. Nothing is written here: the caller stores what improved.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from capacity.core.models import StageResult
from capacity.observe.stage_metrics import MetricsSource, StageMetrics, StageWindow


@dataclass(frozen=True)
class Refetch:
    """One stage fetched again: the result as it was, the new fetch, and whether the fetch is better."""

    before: StageResult
    fetched: StageMetrics
    improved: bool

    @property
    def after(self) -> StageResult:
        """The stage with the new figures merged in when the fetch is better, else unchanged."""
        if not self.improved:
            return self.before
        r = self.before
        return r.model_copy(
            update={
                "metrics": {**r.metrics, **self.fetched.aggregates},
                "metrics_completeness": {**r.metrics_completeness, **self.fetched.completeness},
            }
        )


def due(result: StageResult, *, force: bool = False) -> bool:
    """Whether a stage is fetched again: it has a window, and some metric is short of complete (or none
    was fetched at all), or ``force``."""
    if result.measure_from is None or result.ended_at is None:
        return False
    comp = result.metrics_completeness
    return force or not comp or min(comp.values()) < 1.0


def better(before: dict[str, float], after: dict[str, float]) -> bool:
    """The rule for "a better fetch": its total completeness over all metrics is strictly higher.

    Totals, not per-metric maxima: a fetch that gains one late metric but loses another (an answer
    cut short by a rate limit) is not better, and keeping the stored figures is the safe side.
    """
    return sum(after.values()) > sum(before.values())


def refetch_incomplete(source: MetricsSource, stages: Iterable[StageResult], *, force: bool = False) -> list[Refetch]:
    """Fetch (without waiting) every stage that is :func:`due`; one :class:`Refetch` per stage fetched,
    in order."""
    out: list[Refetch] = []
    for r in stages:
        if not due(r, force=force):
            continue
        assert r.measure_from is not None and r.ended_at is not None
        sm = source.fetch_stage(StageWindow(stage=r.index, start=r.measure_from, end=r.ended_at), wait=False)
        out.append(Refetch(r, sm, better(r.metrics_completeness, sm.completeness)))
    return out
