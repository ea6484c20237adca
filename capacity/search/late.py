"""The catch-up pass after the stage loop: late metrics stored, and stages with blind guards judged again.

A stage judged while a guard's metrics had not arrived (late CloudWatch data, an agent point 90 s
behind, a Datadog outage mid-stage) passed that guard blind. When the catch-up pass brings the
metrics, the stage is judged again (``judge.rejudge``): the stored stage, the summary and the analysis
follow, and the run's warnings (and so the report) say which stages changed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from capacity.core.models import StageResult
from capacity.judge.rejudge import change_note, rejudge

if TYPE_CHECKING:
    from capacity.observe.refetch import Refetch
    from capacity.plan.experiment import Experiment
    from capacity.search.finish import RunState
    from capacity.store import RunStore


def catch_up(source: object, exp: Experiment, store: RunStore, state: RunState) -> list[int]:
    """Re-fetch incomplete stages, store the better fetches, re-judge; the indices whose verdict changed."""
    from capacity.observe.refetch import refetch_incomplete

    results = state.results
    changed: list[int] = []
    for x in refetch_incomplete(source, results):  # type: ignore[arg-type]
        if not x.improved:
            continue
        store.update_stage_metrics(x.before.index, x.fetched.frame, x.fetched.aggregates, x.fetched.completeness)
        after = judged_again(x, exp)
        if after.rejudged:
            store.rewrite_stage_result(after)
        note = change_note(x.before, after)
        if note:
            changed.append(after.index)
            state.warnings.append(note)
            if after.breaches and after.index not in state.first_breach:
                state.first_breach[after.index] = after.breaches[0].code
        results[results.index(x.before)] = after
    return changed


def judged_again(x: Refetch, exp: Experiment) -> StageResult:
    """The refetched stage, judged again by the server-metric guards when its blind guards have data now."""
    from capacity.judge.server_guards import blind_queries, metric_guard_breaches

    after = x.after
    if not after.blind:
        return after
    sm = x.fetched
    blind_now = blind_queries(exp.guards, after.metrics_completeness, sm.missing, sm.pending)
    return rejudge(after, metric_guard_breaches(after.metrics, exp.guards), blind_now)
