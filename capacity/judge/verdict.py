"""Turning a stage's measurement (client side) and its server metrics into a judged StageResult.

Verdict precedence: an interrupted stage is "interrupted"; a stage that lost a load worker or whose
generator was the bottleneck is invalid (never a knee, never capacity); otherwise any breach fails it.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from typing import TYPE_CHECKING

from capacity.breach import STAGE, Breach
from capacity.judge.guards import StageTotals, is_generator_bound, judge_stage
from capacity.models import SecondSample, StageResult, Verdict
from capacity.plan.experiment import Guards

if TYPE_CHECKING:
    from capacity.measurement import StageMeasurement


def _median(values: Sequence[float | None]) -> float | None:
    xs = [v for v in values if v is not None]
    return statistics.median(xs) if xs else None


def totals_from(meas: StageMeasurement) -> tuple[StageTotals, bool]:
    """Whole-stage totals; for a stage aborted before its measured part, the seconds after the first two.

    Returns the totals and whether they came from that fallback (per-second percentiles then).
    """
    spec = meas.spec
    measured = [s for s in meas.seconds if s.phase == "measure"]
    cpu = _mean([s.generator_cpu_pct for s in measured])
    if meas.requests > 0 or meas.dropped > 0:
        # goodput is successful completions per second *by completion time* over the measured seconds;
        # the stage totals also count requests finishing after the stage (an overloaded stage's backlog)
        achieved = sum(s.ok for s in measured) / len(measured) if measured else meas.achieved_rps
        return (
            StageTotals(
                target_rps=spec.target_rps,
                offered_rps=meas.offered_rps,
                achieved_rps=achieved,
                requests=meas.requests,
                ok=meas.ok,
                errors=meas.errors,
                dropped=meas.dropped,
                p95_ms=meas.percentile_ms(95),
                p99_ms=meas.percentile_ms(99),
                generator_cpu_pct=cpu,
            ),
            False,
        )
    tail: list[SecondSample] = list(meas.seconds[2:]) or list(meas.seconds)
    n = max(1, len(tail))
    return (
        StageTotals(
            target_rps=spec.target_rps,
            offered_rps=sum(s.offered for s in tail) / n,
            achieved_rps=sum(s.ok for s in tail) / n,
            requests=sum(s.offered for s in tail),
            ok=sum(s.ok for s in tail),
            errors=sum(s.errors for s in tail),
            dropped=sum(s.dropped for s in tail),
            p95_ms=_median([s.p95_ms for s in tail]),
            p99_ms=_median([s.p99_ms for s in tail]),
            generator_cpu_pct=_mean([s.generator_cpu_pct for s in tail]),
        ),
        True,
    )


def _mean(values: Sequence[float | None]) -> float | None:
    xs = [v for v in values if v is not None]
    return sum(xs) / len(xs) if xs else None


def decide(breaches: Sequence[Breach], *, interrupted: bool = False, worker_lost: bool = False) -> Verdict:
    if interrupted:
        return "interrupted"
    if worker_lost:
        return "invalid: worker lost"
    if is_generator_bound(breaches):
        return "invalid: generator"
    return "fail" if breaches else "pass"


def judge_measurement(
    meas: StageMeasurement,
    guards: Guards,
    *,
    probe: str = "ramp",
    live_breaches: Sequence[Breach] = (),
    metric_breaches: Sequence[Breach] = (),
    metrics: dict[str, float | None] | None = None,
    completeness: dict[str, float] | None = None,
    extra_reasons: Sequence[str] = (),
    blind: Sequence[str] = (),
) -> tuple[StageResult, list[Breach]]:
    """Judge one stage from its breach records: ``live_breaches`` aborted it mid-stage (they stand, and a
    whole-stage breach of the same code is not added again), ``metric_breaches`` come from the server
    metrics. ``extra_reasons`` are notes that are not breaches (missing metrics); ``blind`` names the
    queries of guards that had no data (they never fail a stage; the result and its reasons say so).
    Returns the result (``reasons`` = the breaches' text, then the notes) and the breaches in order."""
    totals, fallback = totals_from(meas)
    breaches: list[Breach] = list(live_breaches)
    for b in judge_stage(totals, guards):
        if all(b.code != x.code for x in breaches):
            breaches.append(b)
    breaches.extend(metric_breaches)
    if meas.worker_lost:
        breaches.append(Breach("worker-lost", "workers", "a load worker was lost during the stage", window=STAGE))
    verdict = decide(breaches, interrupted=meas.interrupted, worker_lost=meas.worker_lost)
    reasons = [b.text for b in breaches]
    if meas.interrupted:
        reasons.insert(0, "interrupted by the user")
    if fallback and meas.aborted:
        reasons.append("aborted before the measured part: figures from the seconds it ran")
    reasons += extra_reasons
    if blind:
        reasons.append(blind_note(blind))
    hist_mean = _hist_mean(meas)
    completed = totals.ok + totals.errors
    result = StageResult(
        index=meas.spec.index,
        target_rps=round(meas.spec.target_rps, 4),
        offered_rps=round(totals.offered_rps, 4),
        achieved_rps=round(totals.achieved_rps, 4),
        dropped=totals.dropped,
        p50_ms=_round(meas.percentile_ms(50) if not fallback else _median([s.p50_ms for s in meas.seconds[2:]])),
        p95_ms=_round(totals.p95_ms),
        p99_ms=_round(totals.p99_ms),
        error_ratio=round(totals.errors / completed, 6) if completed else 0.0,
        verdict=verdict,
        reasons=reasons,
        metrics=dict(metrics or {}),
        probe=probe,
        started_at=meas.started_at,
        measure_from=meas.measure_from,
        ended_at=meas.ended_at,
        duration_s=round((meas.ended_at - meas.started_at).total_seconds(), 3),
        requests=totals.requests,
        ok=totals.ok,
        errors=totals.errors,
        mean_ms=_round(hist_mean),
        max_ms=_round(meas.percentile_ms(100) if not fallback else None),
        generator_cpu_pct=_round(totals.generator_cpu_pct),
        max_inflight=meas.max_inflight_seen,
        metrics_completeness=dict(completeness or {}),
        status_codes=dict(meas.status_codes),
        aborted_early=bool(meas.aborted),
        breaches=breaches,
        blind=list(blind),
    )
    return result, breaches


def blind_note(blind: Sequence[str]) -> str:
    """The reason line for guards that judged nothing: which queries returned no data."""
    return f"blind guard(s), no data for: {', '.join(blind)}"


def _hist_mean(meas: StageMeasurement) -> float | None:
    if meas.histogram.get_total_count() == 0:
        return None
    return float(meas.histogram.get_mean_value()) / 1000.0


def _round(v: float | None, nd: int = 3) -> float | None:
    return None if v is None else round(float(v), nd)
