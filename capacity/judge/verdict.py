"""Turning a stage's measurement (client side) and its server metrics into a judged StageResult.

Verdict precedence: an interrupted stage is "interrupted"; a stage that lost a load worker or whose
generator was the bottleneck is invalid (never a knee, never capacity); otherwise any breach fails it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from capacity.core.breach import STAGE, Breach
from capacity.core.models import EndpointStats, StageResult, Verdict
from capacity.core.outcomes import Cause, GuardCode
from capacity.judge.guards import StageTotals, is_generator_bound, judge_endpoints, judge_flows, judge_stage
from capacity.plan.experiment import Guards

if TYPE_CHECKING:
    from capacity.core.measurement import StageMeasurement


def totals_from(meas: StageMeasurement) -> StageTotals:
    """Whole-stage totals over the stage's one window (see ``capacity.load.stage_totals.build_measurement``).

    A stage stopped in its warm-up is judged on every arrival up to the stop; requests killed at the
    stop count as unfinished (failures for the error ratio) and their waits bound the percentiles below.
    """
    in_window = [s for s in meas.seconds if s.t >= meas.measure_from.timestamp() - 1e-6] or list(meas.seconds)
    return StageTotals(
        target_rps=meas.spec.target_rps,
        offered_rps=meas.offered_rps,
        achieved_rps=meas.achieved_rps,
        requests=meas.requests,
        ok=meas.ok,
        errors=meas.errors,
        dropped=meas.dropped,
        p95_ms=meas.percentile_ms(95),
        p99_ms=meas.percentile_ms(99),
        generator_cpu_pct=_mean([s.generator_cpu_pct for s in in_window]),
        unfinished=meas.unfinished,
    )


def at_least_the_failing_window(totals: StageTotals, live_breaches: Sequence[Breach]) -> StageTotals:
    """A stage stopped on a percentile reports at least the figure that stopped it.

    The stage's percentile covers every arrival of its window, the faster seconds before the queue
    built included, so it can come out a little below the failing window's (whose lowest per-second
    value is the breach's ``value``); a stage failed on p95 must never read as faster than that."""
    floors: dict[str, float] = {}
    for b in live_breaches:
        if b.code in ("p95", "p99") and not b.scope and b.value is not None:
            floors[b.code] = max(floors.get(b.code, b.value), b.value)
    if not floors:
        return totals
    p95 = _at_least(totals.p95_ms, floors.get("p95"))
    p99 = _at_least(totals.p99_ms, max(floors.get("p99", 0.0), p95 or 0.0) or None)
    return replace(totals, p95_ms=p95, p99_ms=p99)


def _at_least(value: float | None, floor: float | None) -> float | None:
    if floor is None:
        return value
    return floor if value is None else max(value, floor)


def _mean(values: Sequence[float | None]) -> float | None:
    xs = [v for v in values if v is not None]
    return sum(xs) / len(xs) if xs else None


WORKER_LOST_TEXT = "a load worker was lost during the stage"


def decide(
    breaches: Sequence[Breach],
    *,
    interrupted: bool = False,
    drifted: bool = False,
    worker_lost: bool = False,
    test_data: bool = False,
    auth: bool = False,
) -> Verdict:
    """``drifted``: the measured cluster changed during the stage, so it says nothing about any one size;
    ``test_data``: the test records ran out mid-stage; its errors are the CSV's end, never the target's."""
    if interrupted:
        return Verdict.INTERRUPTED
    if drifted:
        return Verdict.invalid(Cause.TASK_DRIFT)
    if worker_lost:
        return Verdict.invalid(Cause.WORKER_LOST)
    if test_data:
        return Verdict.invalid(Cause.TEST_DATA)
    if auth:
        return Verdict.invalid(Cause.AUTH)
    if is_generator_bound(breaches):
        return Verdict.invalid(Cause.GENERATOR)
    return Verdict.FAIL if breaches else Verdict.PASS


def _reasons(
    meas: StageMeasurement, breaches: Sequence[Breach], *, drift: str | None, extra: Sequence[str], blind: Sequence[str]
) -> list[str]:
    """What set the verdict first (drift, an interrupt, the end of the test data), then each breach, then notes."""
    first = [drift] if drift else []
    if meas.interrupted:
        first.append("interrupted by the user")
    if meas.records_exhausted > 0:
        first.append(f"test data ran out: {meas.records_exhausted} arrival(s) found no unused record")
    notes = [*window_notes(meas), *extra, *([blind_note(blind)] if blind else [])]
    return [*first, *(b.text for b in breaches), *notes]


@dataclass(frozen=True)
class ServerSide:
    """What the server metrics said of a stage: aggregates, completeness, the guards they broke, notes."""

    metrics: Mapping[str, float | None] = field(default_factory=dict)
    completeness: Mapping[str, float] = field(default_factory=dict)
    breaches: Sequence[Breach] = ()
    """Breaches of the server-metric guards (``judge/server_guards.py``)."""
    notes: Sequence[str] = ()
    """Reasons that are not breaches (metrics that never arrived)."""
    blind: Sequence[str] = ()
    """Queries of set guards that had no data: those guards judged nothing, and never fail a stage."""


NO_SERVER_SIDE = ServerSide()
"""A stage judged on the client side alone (no metrics source, or an interrupted stage)."""


def judge_measurement(
    meas: StageMeasurement,
    guards: Guards,
    *,
    probe: str = "ramp",
    live_breaches: Sequence[Breach] = (),
    server: ServerSide = NO_SERVER_SIDE,
    drift: str | None = None,
) -> StageResult:
    """Judge one stage from its breach records: ``live_breaches`` aborted it mid-stage (they stand, and a
    whole-stage breach of the same code and scope is not added again), ``server`` holds what the metrics
    said; ``drift`` says how the measured cluster changed during the stage (``capacity scale``). The
    result's ``reasons`` are the breaches' text, then the notes; ``breaches`` the records in order."""
    totals = at_least_the_failing_window(totals_from(meas), live_breaches)
    breaches: list[Breach] = list(live_breaches)
    for b in [*judge_stage(totals, guards), *judge_endpoints(meas.endpoints, guards), *judge_flows(meas.flows, guards)]:
        if all((b.code, b.scope) != (x.code, x.scope) for x in breaches):
            breaches.append(b)
    breaches.extend(server.breaches)
    if meas.worker_lost:
        breaches.append(Breach(GuardCode.WORKER_LOST, "workers", WORKER_LOST_TEXT, window=STAGE))
    exhausted = meas.records_exhausted > 0
    auth = auth_failure(meas.status_codes, guards.max_auth_failure_ratio)
    verdict = decide(
        breaches,
        interrupted=meas.interrupted,
        drifted=bool(drift),
        worker_lost=meas.worker_lost,
        test_data=exhausted,
        auth=bool(auth),
    )
    reasons = _reasons(meas, breaches, drift=drift or auth, extra=server.notes, blind=server.blind)
    failed = totals.errors + totals.unfinished
    attempted = totals.ok + failed
    result = StageResult(
        index=meas.spec.index,
        target_rps=round(meas.spec.target_rps, 4),
        offered_rps=round(totals.offered_rps, 4),
        achieved_rps=round(totals.achieved_rps, 4),
        dropped=totals.dropped,
        p50_ms=_round(meas.percentile_ms(50)),
        p95_ms=_round(totals.p95_ms),
        p99_ms=_round(totals.p99_ms),
        error_ratio=round(failed / attempted, 6) if attempted else 0.0,
        verdict=verdict,
        reasons=reasons,
        metrics=dict(server.metrics),
        probe=probe,
        started_at=meas.started_at,
        measure_from=meas.measure_from,
        ended_at=meas.ended_at,
        duration_s=round((meas.ended_at - meas.started_at).total_seconds(), 3),
        requests=totals.requests,
        ok=totals.ok,
        errors=totals.errors,
        mean_ms=_round(_hist_mean(meas)),
        max_ms=_round(meas.percentile_ms(100)),
        generator_cpu_pct=_round(totals.generator_cpu_pct),
        max_inflight=meas.max_inflight_seen,
        metrics_completeness=dict(server.completeness),
        status_codes=dict(meas.status_codes),
        aborted_early=bool(meas.aborted),
        breaches=breaches,
        blind=list(server.blind),
        unfinished=meas.unfinished,
        aborted_in_warmup=meas.aborted_in_warmup,
        percentiles_censored=meas.percentiles_censored,
        endpoints=dict(meas.endpoints),
        worst_endpoint=worst_endpoint(meas.endpoints),
        flows=dict(meas.flows),
        auth_retries=meas.auth_retries,
    )
    return result


def auth_failure(status_codes: Mapping[str, int], limit: float) -> str | None:
    """The reason a stage is ``invalid: auth``: more requests refused (401/403, after the one retry with a
    fresh token) than ``limit`` of those sent; None otherwise."""
    sent = sum(status_codes.values())
    refused = status_codes.get("401", 0) + status_codes.get("403", 0)
    if not sent or refused / sent <= limit:
        return None
    return (
        f"auth: {refused} of {sent} requests refused (401/403) after a retry with a fresh token, "
        f"{refused / sent:.1%} > {limit:.1%}: the token, not the target (not a knee)"
    )


def window_notes(meas: StageMeasurement) -> list[str]:
    """What a reader must know to read the stage's figures: the window they cover, censored latencies."""
    notes = []
    if meas.aborted_in_warmup:
        notes.append("stopped in its warm-up: figures cover every arrival from the stage's start to the stop")
    if meas.unfinished:
        notes.append(
            f"{meas.unfinished} request(s) unfinished at the stop: counted as failures, their waits so far "
            "in the percentiles (lower bounds)"
        )
    return notes


def worst_endpoint(endpoints: Mapping[str, EndpointStats]) -> str:
    """The endpoint with the highest p95 ("" with fewer than two endpoints having one)."""
    ranked = [(s.p95_ms, name) for name, s in endpoints.items() if s.p95_ms is not None]
    return max(ranked)[1] if len(ranked) > 1 else ""


def blind_note(blind: Sequence[str]) -> str:
    """The reason line for guards that judged nothing: which queries returned no data."""
    return f"blind guard(s), no data for: {', '.join(blind)}"


def _hist_mean(meas: StageMeasurement) -> float | None:
    if meas.histogram.get_total_count() == 0:
        return None
    return float(meas.histogram.get_mean_value()) / 1000.0


def _round(v: float | None, nd: int = 3) -> float | None:
    return None if v is None else round(float(v), nd)
