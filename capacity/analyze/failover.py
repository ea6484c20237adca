"""A failover run's periods: before the loss, during it (until the service is whole again), after.

Periods are whole segments (the stored stages): the loss happens at a segment boundary, so
``before`` ends exactly at it; ``during`` runs to the end of the segment in which the service was
back, so it never flatters the loss. Each period's figures come from its segments' per-second
samples (goodput, errors, dropped over the measured seconds), their merged latency histograms
(p95, p99: exact over the period, not averaged per second) and their server metrics (per-task CPU
and free pool, the job queue). Pure functions: data in, numbers out.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd
from hdrh.histogram import HdrHistogram

PERIODS: tuple[str, ...] = ("before", "during", "after")
CONTRACT_KEYS: tuple[str, ...] = ("goodput_rps", "p95_ms", "p99_ms", "error_ratio", "dropped")


@dataclass(frozen=True)
class SegmentSpan:
    """One stored segment: its stage index and wall-clock span (epoch seconds)."""

    index: int
    start: float
    end: float


def assign_periods(spans: Sequence[SegmentSpan], lost_at: float | None, back_at: float | None) -> dict[int, str]:
    """Stage index -> period. Without a loss every segment is ``before``; not back: the rest is ``during``."""
    out: dict[int, str] = {}
    for s in spans:
        if lost_at is None or s.end <= lost_at + 1e-6:
            out[s.index] = "before"
        elif back_at is None or s.start < back_at:
            out[s.index] = "during"
        else:
            out[s.index] = "after"
    return out


def _ms(hist: HdrHistogram | None, q: float) -> float | None:
    if hist is None or hist.get_total_count() == 0:
        return None
    return float(hist.get_value_at_percentile(q)) / 1000.0


def _merged(hists: Sequence[HdrHistogram]) -> HdrHistogram | None:
    if not hists:
        return None
    h0 = hists[0]
    out = HdrHistogram(h0.lowest_trackable_value, h0.highest_trackable_value, h0.significant_figures)
    for h in hists:
        out.add(h)
    return out


def _server(metrics: pd.DataFrame, stages: list[int]) -> dict[str, Any]:
    """Per-task CPU (mean over the period, by task) and free pool (its lowest), the queue's worst."""
    if metrics.empty or "metric" not in metrics.columns:
        return {}
    rows = metrics[metrics["stage"].isin(stages)]
    out: dict[str, Any] = {}
    cpu = rows[rows["metric"] == "cpu_pct"].groupby("group")["value"].mean()
    if len(cpu):
        out["cpu_pct_by_task"] = {str(k): float(v) for k, v in cpu.items()}
        out["cpu_pct_max_task"] = float(cpu.max())
    pool = rows[rows["metric"] == "pool_capacity"].groupby("group")["value"].min()
    if len(pool):
        out["pool_free_min_by_task"] = {str(k): float(v) for k, v in pool.items()}
        out["pool_free_min"] = float(pool.min())
    for name in ("backlog", "queue_size", "queue_latency_s"):
        vals = rows.loc[rows["metric"] == name, "value"]
        if len(vals):
            out[f"{name}_max"] = float(vals.max())
    out["tasks_reporting"] = int(rows.loc[rows["metric"] == "cpu_pct", "group"].nunique()) if len(cpu) else None
    return out


def period_figures(
    seconds: pd.DataFrame,
    metrics: pd.DataFrame,
    histograms: Mapping[int, HdrHistogram],
    periods: Mapping[int, str],
    lost_at: float | None,
) -> dict[str, dict[str, Any] | None]:
    """Each period's figures (``None`` for a period with no measured second): the contract's five keys
    first, then its span, offered rate and server side."""
    out: dict[str, dict[str, Any] | None] = {}
    for name in PERIODS:
        stages = sorted(i for i, p in periods.items() if p == name)
        rows = seconds[seconds["stage"].isin(stages) & (seconds["phase"] == "measure")] if stages else seconds.iloc[0:0]
        if rows.empty:
            out[name] = None
            continue
        n = len(rows)
        ok, errors, dropped = int(rows["ok"].sum()), int(rows["errors"].sum()), int(rows["dropped"].sum())
        hist = _merged([histograms[i] for i in stages if i in histograms])
        ref = lost_at if lost_at is not None else float(rows["t"].min())
        out[name] = {
            "goodput_rps": ok / n,
            "p95_ms": _ms(hist, 95.0),
            "p99_ms": _ms(hist, 99.0),
            "error_ratio": errors / (ok + errors) if ok + errors else 0.0,
            "dropped": dropped,
            "offered_rps": float(rows["offered"].sum()) / n,
            "seconds": n,
            "from_s": round(float(rows["t"].min()) - ref, 3),
            "to_s": round(float(rows["t"].max()) + 1.0 - ref, 3),
            "stages": stages,
            **_server(metrics, stages),
        }
    return out


def contract_periods(figures: Mapping[str, Mapping[str, Any] | None]) -> dict[str, dict[str, Any]]:
    """The ``--json`` periods: exactly the five keys each (``None`` values for a period that did not happen)."""
    return {p: {k: (figures.get(p) or {}).get(k) for k in CONTRACT_KEYS} for p in PERIODS}


def per_task_load(
    during: Mapping[str, Any] | None, surviving: int, capacity_rps: float | None
) -> dict[str, float | int | None]:
    """The rate each surviving task carried during the loss beside the per-task capacity measured."""
    rate = float(during["goodput_rps"]) / surviving if during and surviving > 0 else None
    offered = float(during["offered_rps"]) / surviving if during and surviving > 0 else None
    headroom = capacity_rps - offered if capacity_rps is not None and offered is not None else None
    use = offered / capacity_rps if capacity_rps and offered is not None else None
    return {
        "surviving_tasks": surviving,
        "goodput_rps_per_task": rate,
        "offered_rps_per_task": offered,
        "capacity_rps_per_task": capacity_rps,
        "headroom_rps_per_task": headroom,
        "utilisation_of_capacity": None if use is None or not math.isfinite(use) else use,
    }
