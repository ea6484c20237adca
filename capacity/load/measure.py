"""Turning raw per-process counts into the shared contracts, and moving them between processes.

Workers send each closed second and each finished stage as plain msgpack-able dicts with their
histograms HdrHistogram-encoded; the master decodes and adds them, so merged percentiles are exact
(to the histogram's precision), never averages of percentiles.
"""

from __future__ import annotations

from typing import Any

from hdrh.histogram import HdrHistogram

from capacity.load.engine import SecondRaw, StageRaw, new_histogram
from capacity.measurement import pct_ms
from capacity.models import Phase, SecondSample


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


def stage_to_wire(stage: int, r: StageRaw) -> dict[str, Any]:
    return {
        "stage": stage,
        "ended_wall": r.ended_wall,
        "load_stopped_wall": r.load_stopped_wall,
        "requests": r.requests,
        "ok": r.ok,
        "errors": r.errors,
        "dropped": r.dropped,
        "status_codes": r.status_codes,
        "names": r.names,
        "kind_requests": r.kind_requests,
        "kind_errors": r.kind_errors,
        "kind_hists": [h.encode() for h in r.kind_hists],
        "records_exhausted": r.records_exhausted,
        "stopped": r.stopped,
    }


def stage_from_wire(d: dict[str, Any]) -> StageRaw:
    return StageRaw(
        ended_wall=float(d["ended_wall"]),
        load_stopped_wall=float(d.get("load_stopped_wall") or d["ended_wall"]),
        seconds=[],
        requests=int(d["requests"]),
        ok=int(d["ok"]),
        errors=int(d["errors"]),
        dropped=int(d["dropped"]),
        status_codes={str(k): int(v) for k, v in d["status_codes"].items()},
        names=list(d["names"]),
        kind_requests=list(d["kind_requests"]),
        kind_errors=list(d["kind_errors"]),
        kind_hists=[HdrHistogram.decode(b) for b in d["kind_hists"]],
        records_exhausted=int(d["records_exhausted"]),
        stopped=d.get("stopped"),
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


def merge_kind_hists(raws: list[StageRaw]) -> tuple[HdrHistogram, dict[str, dict[str, float]]]:
    """The stage histogram (sum of all kinds) and per-kind requests/errors/p95 over all workers."""
    total = new_histogram(3)
    per: dict[str, dict[str, float]] = {}
    names = raws[0].names if raws else []
    for i, name in enumerate(names):
        h = new_histogram(3)
        req = err = 0
        for r in raws:
            if i < len(r.kind_hists) and r.kind_hists[i].get_total_count():
                h.add(r.kind_hists[i])
            req += r.kind_requests[i] if i < len(r.kind_requests) else 0
            err += r.kind_errors[i] if i < len(r.kind_errors) else 0
        if h.get_total_count():
            total.add(h)
        p95 = pct_ms(h, 95)
        per[name] = {
            "requests": float(req),
            "errors": float(err),
            "p95_ms": p95 if p95 is not None else float("nan"),
        }
    return total, per
