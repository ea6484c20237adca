"""``analyse_run``: every estimate for one run, each with its interval, signal and caveats.

Pure: DataFrames and guards in, a ``RunAnalysis`` out. "Not reached" is an answer (a lower bound,
``reached=False``), and thin data give ``status="insufficient data"`` rather than a made-up figure.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import numpy as np
import pandas as pd

from capacity.analyze.bootstrap import SecondResampler, bootstrap_interval
from capacity.analyze.consistency import (
    Bounds,
    clip_interval,
    contain_point,
    contradictions,
    data_bounds,
    hold_at_saturation,
    hold_below_failure,
    up_to_first_failing,
    violations,
)
from capacity.analyze.knee import LATENCY_SIGNALS, knee_point, knee_rate_only, knee_signals
from capacity.analyze.kneedle import piecewise_breakpoint
from capacity.analyze.queueing import mmc_fit, utilisation_fit
from capacity.analyze.saturation import (
    SaturationFit,
    baseline_ratio,
    fit_saturation,
    saturated_mask,
    up_to_first_saturated,
)
from capacity.analyze.slo import passes_above_first_failure, slo_capacity_point
from capacity.analyze.table import StageTable, normalise_stages
from capacity.analyze.usl import USL, UslFit
from capacity.core.errors import CapacityError
from capacity.core.models import Estimate
from capacity.plan.experiment import Guards

SCALING_COLUMNS = ("nodes", "concurrency", "app_tasks")
QUEUEING_BOOT = 40
"""The M/M/c refit is the costly part of a replicate: its interval uses at most this many."""
WIDE_BRACKET = 1.1
"""A measured bracket wider than this ratio (failing rate / goodput kept) is narrowed by the queueing fit."""


@dataclass
class RunAnalysis:
    """The analysis of one run (see module docstring); ``to_dict`` is what ``analysis.json`` holds."""

    saturation: Estimate
    slo_capacity: Estimate
    knee: Estimate
    knees: dict[str, Estimate] = field(default_factory=dict)
    queueing: Estimate | None = None
    usl: UslFit | None = None
    status: str = "ok"
    notes: list[str] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    """Contradictions between the estimates (or with the data) that could not be resolved: never silent."""

    @property
    def best_saturation(self) -> Estimate:
        """The headline saturation: what the run summary and the sizing report.

        Measured saturation when the run reached it; otherwise the queueing extrapolation (marked
        extrapolated, with the measured lower bound in its note) unless the measured lower bound
        already exceeds it; otherwise the lower bound.
        """
        measured, queueing = self.saturation, self.queueing
        if measured.reached and measured.value is not None:
            return measured
        if queueing is None or queueing.value is None:
            return measured
        if measured.value is not None and queueing.value < measured.value:
            return measured
        bound = f"measured lower bound {measured.value:.1f} rps" if measured.value is not None else ""
        return queueing.model_copy(update={"note": "; ".join(p for p in (queueing.note, bound) if p)})

    def to_dict(self) -> dict[str, Any]:
        return json_safe(
            {
                "status": self.status,
                "saturation": self.saturation.model_dump(mode="json"),
                "slo_capacity": self.slo_capacity.model_dump(mode="json"),
                "knee": self.knee.model_dump(mode="json"),
                "knees": {k: v.model_dump(mode="json") for k, v in self.knees.items()},
                "queueing": self.queueing.model_dump(mode="json") if self.queueing else None,
                "usl": self.usl.to_dict() if self.usl is not None else None,
                "notes": list(self.notes),
                "warnings": list(self.warnings),
                "details": self.details,
            }
        )


def json_safe(value: Any) -> Any:
    """Plain JSON: NaN and infinities become None, numpy scalars become Python numbers."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


def _insufficient(why: str) -> Estimate:
    return Estimate(value=None, reached=False, note=f"insufficient data: {why}")


def _interval_note(resampler: SecondResampler, used: int, n_boot: int) -> str:
    how = "bootstrap over measured seconds" if resampler.by_seconds else "bootstrap over stages"
    return f"{how} ({used}/{n_boot} replicates gave a value)" if n_boot else ""


def analyse_run(
    stages: pd.DataFrame,
    seconds: pd.DataFrame | None = None,
    guards: Guards | None = None,
    *,
    n_boot: int = 300,
    seed: int = 0,
) -> RunAnalysis:
    """Saturation, SLO capacity and knee (with bootstrap intervals), queueing and USL fits."""
    table = normalise_stages(stages)
    notes = list(table.notes)
    min_ratio = guards.min_goodput_ratio if guards is not None else 0.95
    usl = _usl_from_stages(table, notes)
    if len(table.frame) < 2:
        why = f"{len(table.frame)} usable stage(s); at least 2 valid stages are needed"
        notes.append(f"insufficient data: {why}")
        return RunAnalysis(
            saturation=_insufficient(why),
            slo_capacity=_insufficient(why),
            knee=_insufficient(why),
            status="insufficient data",
            notes=notes,
            usl=usl,
        )
    resampler = SecondResampler(table, seconds)
    replicates = resampler.replicates(n_boot, seed)
    boot = _Boot(resampler, replicates, n_boot)
    bounds = data_bounds(table, guards)
    queueing = _queueing(table, replicates, notes)
    queueing = contain_point(queueing) if queueing is not None else None
    saturation = _saturation_estimate(table, boot, min_ratio, queueing)
    slo = hold_below_failure(_slo_estimate(table, boot, guards, notes), bounds, "SLO capacity")
    slo, held = hold_at_saturation(slo, saturation)
    knee_table = up_to_first_failing(up_to_first_saturated(table, min_ratio), guards)
    knees = _knee_estimates(knee_table, boot, min_ratio, guards)
    knees = {k: hold_below_failure(e, bounds, "knee") for k, e in knees.items()}
    limited = bounds.lowest_failing_rate is not None or bool(saturated_mask(table, min_ratio).any())
    knee = hold_below_failure(_main_knee(knees, float(knee_table.rate.max()), limited=limited), bounds, "knee")
    warnings = ([held] if held else []) + _warnings(table, bounds, saturation, slo, knee, queueing)
    max_rate = float(table.rate.max())
    details = {
        "stages_used": len(table.frame),
        "max_rate_rps": max_rate,
        "interval_basis": "seconds" if resampler.by_seconds else "stages",
        "n_boot": n_boot,
    }
    return RunAnalysis(
        saturation=saturation,
        slo_capacity=slo,
        knee=knee,
        knees=knees,
        queueing=queueing,
        usl=usl,
        status="ok" if saturation.reached else "not reached",
        notes=notes,
        details=details,
        warnings=warnings,
    )


def _warnings(
    table: StageTable, bounds: Bounds, saturation: Estimate, slo: Estimate, knee: Estimate, queueing: Estimate | None
) -> list[str]:
    """Contradictions between estimates, then any invariant the construction failed to hold."""
    base = baseline_ratio(table.rate, table.achieved)
    out = contradictions(saturation, slo, knee, base)
    estimates = {"saturation": saturation, "slo_capacity": slo, "knee": knee}
    if queueing is not None:
        estimates["queueing"] = queueing
    out += [f"inconsistent estimate: {v}" for v in violations(estimates, bounds)]
    return out


@dataclass(frozen=True)
class _Boot:
    """The bootstrap replicates of one run and how to describe an interval drawn from them."""

    resampler: SecondResampler
    replicates: list[StageTable]
    n_boot: int

    def interval(self, stat: Any) -> tuple[float | None, float | None, int]:
        return bootstrap_interval(stat, self.replicates)

    def note(self, used: int) -> str:
        return _interval_note(self.resampler, used, self.n_boot)


def _saturation_estimate(table: StageTable, boot: _Boot, min_ratio: float, queueing: Estimate | None) -> Estimate:
    """Measured from goodput; a wide measured bracket is narrowed by the queueing fit."""
    fit = fit_saturation(table, min_ratio)

    def reached_saturation(t: StageTable) -> float | None:
        f = fit_saturation(t, min_ratio)
        return f.value if f.reached else None

    lo, hi, used = boot.interval(reached_saturation)
    max_rate = float(table.rate.max())
    saturation = Estimate(
        value=fit.value,
        lo=lo if fit.reached else None,
        hi=hi if fit.reached else None,
        signal=fit.signal,
        method="goodput vs offered rate (two-segment fit)",
        reached=fit.reached,
        note=(
            boot.note(used)
            if fit.reached
            else f"not reached: goodput followed the offered rate up to {max_rate:.4g} rps (a lower bound)"
        ),
    )
    if fit.reached:  # the stages prove the bracket; a measured figure stays within the goodput seen
        saturation = clip_interval(saturation, fit.low, min(fit.high, fit.peak))
    return _placed_in_bracket(saturation, fit, queueing)


def _slo_estimate(table: StageTable, boot: _Boot, guards: Guards | None, notes: list[str]) -> Estimate:
    value, reached, signal = slo_capacity_point(table, guards)
    above = passes_above_first_failure(table, guards)
    if above:
        notes.append(
            f"{len(above)} stage(s) passed above the lowest failing rate ({', '.join(f'{r:.4g}' for r in above)} rps): "
            "treated as noise; the SLO capacity stays below the lowest failure"
        )
    lo, hi, used = boot.interval(lambda t: slo_capacity_point(t, guards)[0])
    return Estimate(
        value=value,
        lo=lo if value is not None else None,
        hi=hi if value is not None else None,
        signal=signal,
        method="highest rate at which every guard holds (interpolated to the first breach)",
        reached=reached,
        note=(
            "not reached: every stage passed; value is a lower bound"
            if not reached
            else ("no stage passed" if value is None else boot.note(used))
        ),
    )


def _knee_estimates(
    knee_table: StageTable, boot: _Boot, min_ratio: float, guards: Guards | None
) -> dict[str, Estimate]:
    """One knee per signal, on the stages up to the first saturated or failing one (``knee_table``)."""
    knees: dict[str, Estimate] = {}
    knee_replicates = [  # once, not once per signal
        up_to_first_failing(up_to_first_saturated(r, min_ratio), guards) for r in boot.replicates
    ]
    for sig in knee_signals(knee_table):
        kv, how = knee_point(knee_table, sig)
        if kv is None:
            knees[sig] = Estimate(value=None, signal=sig, method="kneedle", reached=False, note=how)
            continue
        k_lo, k_hi, k_used = bootstrap_interval(partial(knee_rate_only, signal=sig), knee_replicates)
        note = (
            boot.note(k_used)
            if sig in LATENCY_SIGNALS
            else "interval by resampling seconds does not move server metrics: it reflects the rate only"
        )
        column = knee_table.column(sig)
        pw = piecewise_breakpoint(knee_table.rate, column) if column is not None else None
        if pw is not None:
            note += f"; two-segment breakpoint at {pw[0]:.4g} rps"
        knees[sig] = Estimate(value=kv, lo=k_lo, hi=k_hi, signal=sig, method=how, reached=True, note=note)
    return knees


def _placed_in_bracket(measured: Estimate, fit: SaturationFit, queueing: Estimate | None) -> Estimate:
    """The queueing fit's value when it falls inside a wide measured bracket, else ``measured``.

    Far-apart stages (a coarse ramp, one overloaded stage whose goodput sagged) only prove that
    saturation lies between the goodput kept up to (``low``) and the rate that failed (``high``);
    the fit of the stages below places it within that bracket, and the bracket bounds its error.
    """
    if queueing is None or (q := queueing.value) is None or not fit.reached or not math.isfinite(fit.high):
        return measured
    if fit.high <= WIDE_BRACKET * fit.low or not fit.low <= q <= fit.high:
        return measured
    lo, hi = None, None
    if queueing.lo is not None and queueing.hi is not None:
        lo, hi = max(queueing.lo, fit.low), min(queueing.hi, fit.high)
        if not lo <= q <= hi:
            lo, hi = None, None
    beyond = q > fit.peak  # above every goodput seen: the model's figure, and it must say so
    return measured.model_copy(
        update={
            "value": q,
            "lo": lo,
            "hi": hi,
            "extrapolated": beyond,
            "signal": f"goodput bracket {fit.low:.4g}-{fit.high:.4g} rps, placed by {queueing.signal}",
            "method": f"goodput vs offered rate, bracket narrowed by the queueing fit ({queueing.method})",
            "note": "; ".join(
                part
                for part in (
                    f"stages kept up to {fit.low:.4g} rps and failed at {fit.high:.4g} rps",
                    f"the two-segment fit alone gives {measured.value:.4g} rps",
                    (
                        f"above the most goodput any stage delivered ({fit.peak:.4g} rps): the queueing fit's figure"
                        if beyond
                        else ""
                    ),
                    "interval: the queueing fit's, clipped to the bracket",
                    measured.note,
                )
                if part
            ),
        }
    )


def _main_knee(knees: dict[str, Estimate], max_rate: float, *, limited: bool) -> Estimate:
    """The earliest latency knee (p95/p99 first, then p50), else the earliest resource knee.

    ``max_rate`` is the highest rate the knee was looked for at. With no bend and every stage kept up,
    the knee is a lower bound there; when a stage failed or saturated (``limited``) the knee lies at or
    below it, so no lower bound is true: the knee is not determined.
    """
    for group in (("p95_ms", "p99_ms"), ("p50_ms",), tuple(k for k in knees if k not in LATENCY_SIGNALS)):
        found = [knees[s] for s in group if s in knees and knees[s].value is not None]
        if found:
            return min(found, key=lambda e: e.value or 0.0)
    if limited:
        return Estimate(
            value=None,
            reached=False,
            method="kneedle",
            note=f"not determined: no signal bent over the stages up to the first failing one ({max_rate:.4g} rps)",
        )
    return Estimate(
        value=max_rate,
        reached=False,
        signal="",
        method="kneedle",
        note="not reached: no signal bent within the measured rates; value is a lower bound",
    )


def _queueing(table: StageTable, replicates: list[StageTable], notes: list[str]) -> Estimate | None:
    """Thread-pool utilisation law when that metric exists, else the M/M/c latency fit.

    CPU's utilisation law only says where CPU would reach 100%, an upper bound when threads or a
    downstream call bind first, so it is reported as a note, never as the estimate.
    """
    util = utilisation_fit(table)
    if util is not None and util[1] == "cpu_pct":
        notes.append(f"utilisation law: CPU would reach 100% at {util[0]:.4g} rps (an upper bound on saturation)")
        util = None
    if util is not None:
        lo, hi, _ = bootstrap_interval(
            lambda t: (utilisation_fit(t, signals=("pool_busy_pct",)) or (None,))[0], replicates
        )
        return Estimate(
            value=float(util[0]),
            lo=lo,
            hi=hi,
            signal=util[1],
            reached=False,
            extrapolated=True,
            method="utilisation law U = X*S/c on sub-saturation stages, extrapolated to 100%",
            note="extrapolated from stages below saturation",
        )
    fit = mmc_fit(table)
    if fit is None:
        notes.append("queueing fit: fewer than 3 sub-saturation stages with latency, or latency did not rise")
        return None
    c, s, value = fit
    lo, hi, _ = bootstrap_interval(
        lambda t: (mmc_fit(t, near_c=c) or (None, None, None))[2], replicates[:QUEUEING_BOOT]
    )
    return Estimate(
        value=float(value),
        lo=lo,
        hi=hi,
        signal="latency percentiles (M/M/c)",
        reached=False,
        extrapolated=True,
        method=f"M/M/c fit of sub-saturation latency: c={c:g}, s={s * 1000:.3g} ms, saturation c/s",
        note="extrapolated from stages below saturation",
    )


def _usl_from_stages(table: StageTable, notes: list[str]) -> UslFit | None:
    for col in SCALING_COLUMNS:
        if col in table.frame.columns:
            n = pd.to_numeric(table.frame[col], errors="coerce").to_numpy(dtype=float)
            if len(np.unique(n[np.isfinite(n)])) >= 4:
                try:
                    return USL().fit(n, table.achieved)
                except CapacityError as exc:
                    notes.append(str(exc))
    return None


def analyse_scaling(frame: pd.DataFrame, *, source: str = "scaling table") -> USL:
    """USL fit of a scaling table: ``nodes`` or ``concurrency`` (or the first column) and ``throughput``."""
    cols = list(frame.columns)
    n_col = next((c for c in ("nodes", "concurrency", "load", "processors") if c in cols), None)
    x_col = next((c for c in ("throughput", "tput", "achieved_rps") if c in cols), None)
    if n_col is None or x_col is None:
        raise CapacityError(f"{source}: a scaling table needs columns 'nodes' or 'concurrency', and 'throughput'")
    n = pd.to_numeric(frame[n_col], errors="coerce")
    x = pd.to_numeric(frame[x_col], errors="coerce")
    if n.isna().any() or x.isna().any():
        bad = int((n.isna() | x.isna()).sum())
        raise CapacityError(f"{source}: {bad} row(s) with a missing or non-numeric {n_col}/{x_col}")
    try:
        return USL().fit(n.to_numpy(), x.to_numpy())
    except CapacityError as exc:
        raise CapacityError(f"{source}: {exc}") from None
