"""From raw per-process stage counts to the one ``StageMeasurement`` the caller gets.

Shared by the in-process driver and the distributed master, so a stage measured either way is
assembled by the same code.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime

from capacity.core.measurement import StageMeasurement, StageSpec
from capacity.core.models import SecondSample
from capacity.load.engine import SecondRaw, StageRaw, stage_seconds
from capacity.load.measure import endpoint_stats, flow_stats, merge_parts, to_sample

OnSecond = Callable[[list[SecondSample]], str | None]
"""Called with the stage's closed seconds so far; a returned reason stops the stage."""


def stage_sample(spec: StageSpec, sec: SecondRaw, *, start_wall: float, workers: int) -> SecondSample:
    """One closed second of ``spec`` as the shared per-second contract."""
    return to_sample(
        sec,
        stage=spec.index,
        start_wall=start_wall,
        warmup_s=spec.warmup_s,
        target_rps=spec.target_rps,
        workers=workers,
    )


def includes_warmup(spec: StageSpec, raws: list[StageRaw], closed_seconds: int, aborted: str | None) -> bool:
    """Whether a stopped stage's figures must cover its warm-up: it stopped in the warm-up, or the guard
    window that stopped it (the last ``spec.guard_window_s`` closed seconds) reaches into it."""
    if aborted is None or spec.warmup_s <= 0:
        return False
    offsets = [r.stop_offset_s for r in raws if r.stop_offset_s is not None]
    stop = min(offsets) if offsets else float(closed_seconds)
    return min(stop, float(closed_seconds - spec.guard_window_s)) < spec.warmup_s


def stats_window(spec: StageSpec, raws: list[StageRaw], *, from_s: float) -> tuple[float, int | None]:
    """The window's length (``from_s`` to the stage's end or the moment arrivals stopped, averaged over
    processes) and the successful responses completed in it (by completion second, up to the stop)."""
    ends = [min(r.stop_offset_s, spec.duration_s) if r.stop_offset_s is not None else spec.duration_s for r in raws]
    end_s = sum(ends) / len(ends) if ends else spec.duration_s
    nsec = stage_seconds(spec.duration_s)
    counted = [r for r in raws if r.ok_by_second]
    if not counted:
        return max(0.0, end_s - from_s), None
    ok = sum(n for r in counted for k, n in enumerate(r.ok_by_second[:nsec]) if k >= from_s)
    return max(0.0, end_s - from_s), ok


def build_measurement(
    spec: StageSpec,
    raws: list[StageRaw],
    seconds: list[SecondSample],
    *,
    started_wall: float,
    aborted: str | None,
    worker_lost: bool = False,
    workers: int = 0,
) -> StageMeasurement:
    """Add up the processes' stages over one window; ``seconds`` are already merged across processes
    (the distributed master adds its ``per_worker`` figures).

    The window starts after the warm-up, or at the stage's start when the stage stopped in it
    (``includes_warmup``), and ends when arrivals stopped: offered, goodput, error ratio and latency
    all cover it. Requests killed at the stop are in it as unfinished (censored latencies)."""
    in_warmup = includes_warmup(spec, raws, len(seconds), aborted)
    from_s = 0.0 if in_warmup else spec.warmup_s
    part = merge_parts(raws, include_warmup=in_warmup)
    hist, endpoints = endpoint_stats(raws[0].names if raws else [], part)
    window_s, window_ok = stats_window(spec, raws, from_s=from_s)
    ended = max((r.ended_wall for r in raws), default=time.time())
    load_ended = max((r.load_stopped_wall or r.ended_wall for r in raws), default=ended)
    rates = [sum(x) for x in zip(*(r.flow_rates for r in raws if r.flow_rates), strict=False)]
    cpus = [s.generator_cpu_pct for s in seconds if s.generator_cpu_pct is not None]
    exhausted = sum(r.records_exhausted for r in raws)
    warnings = []
    if exhausted:
        warnings.append(f"stage {spec.index}: test data exhausted, {exhausted} arrival(s) had no unused record")
    return StageMeasurement(
        spec=spec,
        started_at=datetime.fromtimestamp(started_wall, UTC),
        measure_from=datetime.fromtimestamp(started_wall + from_s, UTC),
        ended_at=datetime.fromtimestamp(ended, UTC),
        load_ended_at=datetime.fromtimestamp(load_ended, UTC),
        seconds=seconds,
        histogram=hist,
        requests=part.total_requests,
        ok=part.total_ok,
        errors=part.total_errors,
        unfinished=part.total_unfinished,
        dropped=part.dropped,
        status_codes=dict(part.status_codes),
        endpoints=endpoints,
        aborted=aborted,
        aborted_in_warmup=in_warmup,
        window_s=window_s,
        window_ok=window_ok,
        interrupted=aborted == "interrupted",
        worker_lost=worker_lost,
        generator_cpu_max_pct=max(cpus) if cpus else None,
        max_inflight_seen=max((s.inflight for s in seconds), default=0),
        records_exhausted=exhausted,
        workers=workers,
        warnings=warnings,
        flows=flow_stats(part, rates, window_s),
    )
