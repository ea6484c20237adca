"""Estimates that agree with the data and with each other: the bounds the stages prove, and the checks.

The stages bound every figure the analysis may present as measured (docs/design.md, "analysis"):

- the SLO capacity and the knee are at most the lowest rate at which a stage failed (target or
  offered, whichever is lower: an aborted stage can overshoot its target);
- the measured saturation is at most the most goodput any stage delivered; a figure above it is a
  model's and is marked ``extrapolated`` with the model named in ``method``;
- a figure the data did not reach is a lower bound inside the measured range;
- every interval contains its point.

``hold_*`` functions apply these by construction; ``violations`` checks them (the property tests
and ``benchmarks/bench_edge.py`` count runs with none), and ``contradictions`` names the
disagreements between estimates that no bound can settle: they become the analysis's warnings.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from capacity.analyze.slo import passing_mask
from capacity.analyze.table import StageTable
from capacity.core.models import Estimate
from capacity.plan.experiment import Guards

EPS = 1e-6
"""Relative slack for float comparisons of figures computed along different paths."""
CROSS_TOLERANCE = 0.05
"""Two estimates contradict only when they disagree by more than this share."""
MODEL_WORDS = ("M/M/c", "utilisation law", "queueing", "USL")
"""An extrapolated figure's ``method`` names one of these models."""


@dataclass(frozen=True)
class Bounds:
    """What the stage table proves about any estimate drawn from it."""

    lowest_failing_rate: float | None
    """Lowest rate (min of target and offered) of a stage that failed a guard; None when none failed."""
    peak_goodput: float
    """The most goodput any stage delivered."""
    max_rate: float
    min_rate: float


def data_bounds(table: StageTable, guards: Guards | None) -> Bounds:
    rate = table.rate
    if len(rate) == 0:
        return Bounds(None, 0.0, 0.0, 0.0)
    ok = passing_mask(table, guards)
    target = table.column("target_rps")
    floor = np.fmin(rate, target) if target is not None else rate
    lowest = float(np.min(floor[~ok])) if (~ok).any() else None
    return Bounds(lowest, float(np.max(table.achieved)), float(np.max(rate)), float(np.min(rate)))


def up_to_first_failing(table: StageTable, guards: Guards | None) -> StageTable:
    """Stages up to and including the lowest failing one (rate order): a knee is looked for there."""
    ok = passing_mask(table, guards)
    if ok.all():
        return table
    first = int(np.argmax(~ok))
    return StageTable(frame=table.frame.iloc[: first + 1].reset_index(drop=True), notes=table.notes)


def _joined(*parts: str) -> str:
    return "; ".join(p for p in parts if p)


def contain_point(est: Estimate) -> Estimate:
    """The estimate with an interval that contains its point (widened, and said so, when it did not)."""
    v, lo, hi = est.value, est.lo, est.hi
    if v is None or lo is None or hi is None or lo - EPS * abs(v) <= v <= hi + EPS * abs(v):
        return est
    return est.model_copy(
        update={
            "lo": min(lo, v),
            "hi": max(hi, v),
            "note": _joined(est.note, f"interval widened to contain the estimate (replicates gave {lo:.4g}-{hi:.4g})"),
        }
    )


def clip_interval(est: Estimate, low: float, high: float) -> Estimate:
    """The interval held inside ``[low, high]`` (what the stages prove), then made to contain the point."""
    if est.lo is None or est.hi is None or not math.isfinite(low) or low > high:
        return contain_point(est)
    return contain_point(est.model_copy(update={"lo": min(max(est.lo, low), high), "hi": max(min(est.hi, high), low)}))


def hold_below_failure(est: Estimate, bounds: Bounds, what: str) -> Estimate:
    """SLO capacity or knee: never above the lowest failing rate (value and interval)."""
    cap = bounds.lowest_failing_rate
    if cap is None or est.value is None:
        return contain_point(est)
    if est.value > cap * (1 + EPS):
        est = est.model_copy(
            update={
                "value": cap,
                "note": _joined(
                    est.note, f"{what} held at the lowest failing rate {cap:.4g} rps (was {est.value:.4g})"
                ),
            }
        )
    return clip_interval(est, 0.0, cap)


def hold_at_saturation(slo: Estimate, saturation: Estimate) -> tuple[Estimate, str | None]:
    """SLO capacity never above the measured saturation throughput; the text says which was held and why.

    The SLO capacity is an offered rate interpolated between stages; saturation is the most goodput
    the target sustained. Where the interpolation lands above saturation (within the search's
    resolution), the rate the target was seen to carry is the one held: sizing from more than the
    target ever delivered would undersize production."""
    sat, v = saturation.value, slo.value
    if sat is None or v is None or not saturation.reached or saturation.extrapolated or v <= sat * (1 + EPS):
        return slo, None
    why = (
        f"SLO capacity held at the saturation throughput {sat:.4g} req/s (the stages put it at {v:.4g}): no "
        "stage delivered more goodput than that, so no higher rate is known to be carried"
    )
    low = min(x for x in (slo.lo, saturation.lo, sat) if x is not None)  # the saturation's own spread
    held = slo.model_copy(
        update={"value": sat, "lo": low if slo.lo is not None else None, "note": _joined(slo.note, why)}
    )
    return clip_interval(held, 0.0, sat), why


def violations(estimates: dict[str, Estimate], bounds: Bounds) -> list[str]:
    """Every broken invariant (see the module docstring), as text; empty when the estimates hold."""
    out: list[str] = []
    cap, peak = bounds.lowest_failing_rate, bounds.peak_goodput
    for name, e in estimates.items():
        if e.value is None:
            continue
        v = e.value
        if e.lo is not None and e.hi is not None and not e.lo - EPS * abs(v) <= v <= e.hi + EPS * abs(v):
            out.append(f"{name}: interval [{e.lo:.4g}, {e.hi:.4g}] does not contain {v:.4g}")
        if name.startswith(("slo_capacity", "knee")) and cap is not None and v > cap * (1 + EPS):
            out.append(f"{name}: {v:.4g} rps above the lowest failing stage ({cap:.4g} rps)")
        if name.startswith(("slo_capacity", "knee")) and v > bounds.max_rate * (1 + EPS):
            out.append(f"{name}: {v:.4g} rps above every measured rate ({bounds.max_rate:.4g} rps)")
        sat = estimates.get("saturation")
        if (
            name.startswith("slo_capacity")
            and sat is not None
            and sat.value is not None
            and sat.reached
            and not sat.extrapolated
            and v > sat.value * (1 + EPS)
        ):
            out.append(f"{name}: {v:.4g} rps above the saturation throughput ({sat.value:.4g} rps)")
        if name.startswith("saturation"):
            if not e.extrapolated and v > peak * (1 + EPS):
                out.append(
                    f"{name}: {v:.4g} rps above the most goodput any stage delivered ({peak:.4g}), not extrapolated"
                )
            if e.extrapolated and not any(w in e.method for w in MODEL_WORDS):
                out.append(f"{name}: extrapolated without naming the model that justifies it")
    return out


def contradictions(saturation: Estimate, slo: Estimate, knee: Estimate, base_ratio: float) -> list[str]:
    """Disagreements between estimates that the bounds cannot settle (each becomes a warning).

    Saturation is goodput; the SLO capacity and the knee are offered rates, so saturation is
    compared at the offered rate it takes (goodput / the low-load success ratio).
    """
    if saturation.value is None or not saturation.reached or base_ratio <= 0:
        return []
    offered_at_saturation = saturation.value / base_ratio
    limit = offered_at_saturation * (1 + CROSS_TOLERANCE)
    out = []
    if knee.value is not None and knee.reached and knee.value > limit:
        out.append(
            f"knee {knee.value:.4g} rps is above the saturation ({saturation.value:.4g} rps): latency bent only "
            "after goodput stopped following the offered rate; the knee is unreliable here"
        )
    if slo.value is not None and slo.reached and slo.value > limit:
        out.append(
            f"SLO capacity {slo.value:.4g} rps is above the saturation ({saturation.value:.4g} rps): a stage passed "
            "every guard while goodput no longer kept up; check the goodput guard (min_goodput_ratio)"
        )
    return out
