"""Turning raw per-process counts into the shared contracts, and moving them between processes.

Workers send each closed second and each finished stage as plain msgpack-able dicts with their
histograms HdrHistogram-encoded; the master decodes and adds them, so merged percentiles are exact
(to the histogram's precision), never averages of percentiles.
"""

from __future__ import annotations

from typing import Any

from hdrh.histogram import HdrHistogram

from capacity.core.measurement import pct_ms
from capacity.core.models import EndpointStats, FlowStats, Phase, SecondSample
from capacity.load.raw import FlowRaw, PartRaw, SecondRaw, StageRaw, new_histogram


def second_to_wire(stage: int, s: SecondRaw) -> dict[str, Any]:
    return {
        "stage": stage,
        "k": s.k,
        "offered": s.offered,
        "ok": s.ok,
        "errors": s.errors,
        "dropped": s.dropped,
        "inflight": s.inflight,
        "cpu": s.cpu_pct,
        "hist": s.hist.encode(),
    }


def second_from_wire(d: dict[str, Any]) -> SecondRaw:
    return SecondRaw(
        k=int(d["k"]),
        offered=int(d["offered"]),
        ok=int(d["ok"]),
        errors=int(d["errors"]),
        dropped=int(d["dropped"]),
        inflight=int(d["inflight"]),
        cpu_pct=d.get("cpu"),
        hist=HdrHistogram.decode(d["hist"]),
    )


def part_to_wire(p: PartRaw) -> dict[str, Any]:
    return {
        "requests": p.requests,
        "errors": p.errors,
        "unfinished": p.unfinished,
        "hists": [h.encode() for h in p.hists],
        "status_codes": p.status_codes,
        "dropped": p.dropped,
        "flows": [flow_to_wire(f) for f in p.flows],
    }


def flow_to_wire(f: FlowRaw) -> dict[str, Any]:
    return {
        "name": f.name,
        "steps": f.steps,
        "counts": [f.started, f.completed, f.failed, f.unfinished, f.dropped],
        "failed_at": f.failed_at,
        "hist": f.hist.encode(),
    }


def flow_from_wire(d: dict[str, Any]) -> FlowRaw:
    started, completed, failed, unfinished, dropped = (int(n) for n in d["counts"])
    return FlowRaw(
        name=str(d["name"]),
        steps=int(d["steps"]),
        started=started,
        completed=completed,
        failed=failed,
        unfinished=unfinished,
        dropped=dropped,
        failed_at=[int(n) for n in d["failed_at"]],
        hist=HdrHistogram.decode(d["hist"]),
    )


def part_from_wire(d: dict[str, Any]) -> PartRaw:
    return PartRaw(
        requests=[int(n) for n in d["requests"]],
        errors=[int(n) for n in d["errors"]],
        unfinished=[int(n) for n in d["unfinished"]],
        hists=[HdrHistogram.decode(b) for b in d["hists"]],
        status_codes={str(k): int(v) for k, v in d["status_codes"].items()},
        dropped=int(d["dropped"]),
        flows=[flow_from_wire(f) for f in d.get("flows") or []],
    )


def stage_to_wire(stage: int, r: StageRaw) -> dict[str, Any]:
    """A worker's stage (its unfinished requests already recorded with their waits at the abort)."""
    return {
        "stage": stage,
        "ended_wall": r.ended_wall,
        "load_stopped_wall": r.load_stopped_wall,
        "stop_offset_s": r.stop_offset_s,
        "ok_by_second": r.ok_by_second,
        "names": r.names,
        "warmup": part_to_wire(r.warmup),
        "measured": part_to_wire(r.measured),
        "records_exhausted": r.records_exhausted,
        "stopped": r.stopped,
        "flow_rates": r.flow_rates,
    }


def stage_from_wire(d: dict[str, Any]) -> StageRaw:
    offset = d.get("stop_offset_s")
    return StageRaw(
        ended_wall=float(d["ended_wall"]),
        load_stopped_wall=float(d.get("load_stopped_wall") or d["ended_wall"]),
        stop_offset_s=float(offset) if offset is not None else None,
        ok_by_second=[int(n) for n in d.get("ok_by_second") or []],
        seconds=[],
        names=list(d["names"]),
        warmup=part_from_wire(d["warmup"]),
        measured=part_from_wire(d["measured"]),
        records_exhausted=int(d["records_exhausted"]),
        stopped=d.get("stopped"),
        flow_rates=[float(x) for x in d.get("flow_rates") or []],
    )


def merge_seconds(parts: list[SecondRaw]) -> SecondRaw:
    """One second over all workers: counts and in-flight add up, CPU is the busiest process's."""
    out = SecondRaw(k=parts[0].k if parts else 0)
    cpus = [p.cpu_pct for p in parts if p.cpu_pct is not None]
    for p in parts:
        out.offered += p.offered
        out.ok += p.ok
        out.errors += p.errors
        out.dropped += p.dropped
        out.inflight += p.inflight
        if p.hist.get_total_count():
            out.hist.add(p.hist)
    out.cpu_pct = max(cpus) if cpus else None
    return out


def to_sample(
    s: SecondRaw, *, stage: int, start_wall: float, warmup_s: float, target_rps: float, workers: int
) -> SecondSample:
    phase: Phase = "measure" if s.k >= warmup_s else "warmup"
    h = s.hist
    return SecondSample(
        stage=stage,
        t=start_wall + s.k,
        phase=phase,
        target_rps=target_rps,
        offered=s.offered,
        ok=s.ok,
        errors=s.errors,
        dropped=s.dropped,
        inflight=s.inflight,
        p50_ms=pct_ms(h, 50),
        p95_ms=pct_ms(h, 95),
        p99_ms=pct_ms(h, 99),
        max_ms=h.get_max_value() / 1000.0 if h.get_total_count() else None,
        generator_cpu_pct=s.cpu_pct,
        workers=workers,
    )


def merge_parts(raws: list[StageRaw], *, include_warmup: bool) -> PartRaw:
    """The stage's arrivals over all workers: the measured part, or every arrival (``include_warmup``).

    Per-kind histograms add exactly, like the per-second ones, so merged percentiles are exact."""
    names = raws[0].names if raws else []
    out = PartRaw.empty(len(names))
    for r in raws:
        out.add(r.part(include_warmup=include_warmup))
    return out


def endpoint_stats(names: list[str], part: PartRaw) -> tuple[HdrHistogram, dict[str, EndpointStats]]:
    """The stage histogram (all kinds added up) and each kind's requests, outcomes and percentiles."""
    total = new_histogram(3)
    per: dict[str, EndpointStats] = {}
    for i, name in enumerate(names):
        h = part.hists[i]
        if h.get_total_count():
            total.add(h)
        req, err, unf = part.requests[i], part.errors[i], part.unfinished[i]
        per[name] = EndpointStats(
            requests=req,
            ok=req - err - unf,
            errors=err,
            unfinished=unf,
            p50_ms=_round(pct_ms(h, 50)),
            p95_ms=_round(pct_ms(h, 95)),
            p99_ms=_round(pct_ms(h, 99)),
        )
    return total, per


def _round(v: float | None) -> float | None:
    return None if v is None else round(v, 3)


def flow_stats(part: PartRaw, planned_per_s: list[float], window_s: float) -> dict[str, FlowStats]:
    """Each session flow's sessions over the window (the part chosen like the requests'), against plan."""
    out: dict[str, FlowStats] = {}
    for i, f in enumerate(part.flows):
        h = f.hist
        p50, p95 = pct_ms(h, 50), pct_ms(h, 95)
        out[f.name] = FlowStats(
            started=f.started,
            completed=f.completed,
            failed=f.failed,
            failed_at_step={str(k + 1): n for k, n in enumerate(f.failed_at) if n},
            unfinished=f.unfinished,
            dropped=f.dropped,
            p50_s=None if p50 is None else round(p50 / 1000.0, 4),
            p95_s=None if p95 is None else round(p95 / 1000.0, 4),
            planned_per_s=round(planned_per_s[i], 4) if i < len(planned_per_s) else 0.0,
            started_per_s=round(f.started / window_s, 4) if window_s > 0 else 0.0,
        )
    return out
