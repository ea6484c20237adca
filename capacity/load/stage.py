"""From raw per-process stage counts to the one ``StageMeasurement`` the caller gets.

Shared by the in-process driver and the distributed master, so a stage measured either way is
assembled by the same code.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime

from capacity.load.engine import SecondRaw, StageRaw
from capacity.load.measure import merge_kind_hists, to_sample
from capacity.measurement import StageMeasurement, StageSpec
from capacity.models import SecondSample

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


def build_measurement(
    spec: StageSpec,
    raws: list[StageRaw],
    seconds: list[SecondSample],
    *,
    started_wall: float,
    aborted: str | None,
    worker_lost: bool = False,
    per_worker: dict[str, dict[str, float]] | None = None,
    workers: int = 0,
) -> StageMeasurement:
    """Add up the processes' stage totals; ``seconds`` are already merged across processes."""
    hist, per_ep = merge_kind_hists(raws)
    codes: dict[str, int] = {}
    for r in raws:
        for c, n in r.status_codes.items():
            codes[c] = codes.get(c, 0) + n
    ended = max((r.ended_wall for r in raws), default=time.time())
    load_ended = max((r.load_stopped_wall or r.ended_wall for r in raws), default=ended)
    cpus = [s.generator_cpu_pct for s in seconds if s.generator_cpu_pct is not None]
    exhausted = sum(r.records_exhausted for r in raws)
    warnings = []
    if exhausted:
        warnings.append(f"stage {spec.index}: test data exhausted, {exhausted} arrival(s) had no unused record")
    return StageMeasurement(
        spec=spec,
        started_at=datetime.fromtimestamp(started_wall, UTC),
        measure_from=datetime.fromtimestamp(started_wall + spec.warmup_s, UTC),
        ended_at=datetime.fromtimestamp(ended, UTC),
        load_ended_at=datetime.fromtimestamp(load_ended, UTC),
        seconds=seconds,
        histogram=hist,
        requests=sum(r.requests for r in raws),
        ok=sum(r.ok for r in raws),
        errors=sum(r.errors for r in raws),
        dropped=sum(r.dropped for r in raws),
        status_codes=codes,
        per_endpoint=per_ep,
        aborted=aborted,
        interrupted=aborted == "interrupted",
        worker_lost=worker_lost,
        generator_cpu_max_pct=max(cpus) if cpus else None,
        max_inflight_seen=max((s.inflight for s in seconds), default=0),
        records_exhausted=exhausted,
        workers=workers,
        per_worker=per_worker or {},
        warnings=warnings,
    )
