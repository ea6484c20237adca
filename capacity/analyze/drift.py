"""Drift over a soak: slopes with intervals, flat or growing, and the time until a limit (pure functions).

Per-second samples of one long run are strongly autocorrelated, so an ordinary least-squares
interval on them would be far too narrow. Each series is first averaged into ``bins`` equal spans of
time (per group: per app task for memory), and the slope is fitted on those means: memory's slope is
common to every task with an intercept each (a pooled within-task fit), which is "the slope per app
task". A drift is *growing* when its interval lies above 0 and its slope exceeds the ``[soak]``
threshold; otherwise it is *flat* (docs/design.md, soak).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from scipy import stats

HOUR = 3600.0
MIB = 1024.0 * 1024.0
DRIFTS = ("mem_mib_per_hour", "queue_jobs_per_hour", "p95_ms_per_hour", "error_ratio_per_hour")
"""The ``--json`` contract's drift names, in order."""
Verdict = Literal["flat", "growing"]
LABELS: dict[str, tuple[str, str, str]] = {
    "mem_mib_per_hour": ("memory per app task", "MiB/h", "the task memory limit"),
    "queue_jobs_per_hour": ("job queue", "jobs/h", "the queue limit"),
    "p95_ms_per_hour": ("p95 latency", "ms/h", "the p95 SLO"),
    "error_ratio_per_hour": ("error ratio", "/h", "the error-ratio guard"),
}
"""Each drift's name for people, its unit, and what its limit is."""


@dataclass(frozen=True)
class Fit:
    """A slope (per hour) with its interval, and the fitted level at the end of the series."""

    value: float | None
    lo: float | None = None
    hi: float | None = None
    level_end: float | None = None
    points: int = 0

    def scaled(self, k: float) -> Fit:
        def s(v: float | None) -> float | None:
            return None if v is None else v * k

        return Fit(s(self.value), s(self.lo), s(self.hi), s(self.level_end), self.points)


@dataclass(frozen=True)
class Drift:
    """One drift's fit and what it means: ``verdict`` and, when a limit is known, hours until reached."""

    fit: Fit
    verdict: Verdict
    threshold: float
    limit: float | None = None
    hours_to_limit: float | None = None

    def contract(self) -> dict[str, Any]:
        f = self.fit
        return {"value": _r(f.value), "lo": _r(f.lo), "hi": _r(f.hi), "verdict": self.verdict}


@dataclass
class SoakDrift:
    """Every drift of a soak, the verdict, and the figures behind them."""

    drifts: dict[str, Drift]
    verdict: Literal["pass", "fail"]
    reasons: list[str] = field(default_factory=list)
    detail: dict[str, Any] = field(default_factory=dict)

    def contract(self) -> dict[str, Any]:
        """Exactly the ``capacity soak --json`` object."""
        return {
            "drift": {name: self.drifts[name].contract() for name in DRIFTS},
            "time_to_limit_h": {name: _r(d.hours_to_limit) for name, d in self.drifts.items() if d.limit is not None},
            "verdict": self.verdict,
        }


def _r(v: float | None, digits: int = 6) -> float | None:
    return None if v is None or not math.isfinite(v) else float(f"{v:.{digits}g}")


def fit_slope(
    times: ArrayLike, values: ArrayLike, groups: ArrayLike | None = None, *, bins: int = 30, confidence: float = 0.95
) -> Fit:
    """Slope of ``values`` per hour against ``times`` (s), over binned means, pooled within ``groups``.

    Fewer than three bins in all (after one intercept per group) give the slope without an interval.
    """
    t, y = np.asarray(times, dtype=float), np.asarray(values, dtype=float)
    g = np.zeros(len(t), dtype=int) if groups is None else pd.factorize(np.asarray(groups))[0]
    ok = np.isfinite(t) & np.isfinite(y)
    t, y, g = t[ok], y[ok], g[ok]
    if len(t) < 2 or np.ptp(t) <= 0:
        return Fit(None, points=len(t))
    edges = np.linspace(t.min(), t.max(), bins + 1)
    b = np.clip(np.searchsorted(edges, t, side="right") - 1, 0, bins - 1)
    frame = pd.DataFrame({"g": g, "b": b, "t": t, "y": y}).groupby(["g", "b"], as_index=False).mean()
    tc = frame["t"] - frame.groupby("g")["t"].transform("mean")
    yc = frame["y"] - frame.groupby("g")["y"].transform("mean")
    sxx = float((tc * tc).sum())
    n, k = len(frame), int(frame["g"].nunique())
    if sxx <= 0:
        return Fit(None, points=n)
    slope = float((tc * yc).sum()) / sxx
    # the fitted level at each group's last bin; the highest group's is the one nearest its limit
    ends = frame.groupby("g").agg(t_mean=("t", "mean"), y_mean=("y", "mean"), t_end=("t", "max"))
    level_end = float((ends["y_mean"] + slope * (ends["t_end"] - ends["t_mean"])).max())
    dof = n - k - 1
    if dof < 1:
        return Fit(slope * HOUR, level_end=level_end, points=n)
    resid = yc - slope * tc
    se = math.sqrt(float((resid * resid).sum()) / dof / sxx)
    half = float(stats.t.ppf(0.5 + confidence / 2, dof)) * se
    return Fit(slope * HOUR, (slope - half) * HOUR, (slope + half) * HOUR, level_end, n)


def judge(fit: Fit, threshold: float, limit: float | None = None) -> Drift:
    """Growing: the interval excludes 0 from above and the slope exceeds ``threshold``. Hours to ``limit``
    from the fitted end level, for a growing drift (None when flat or no limit is known)."""
    growing = fit.value is not None and fit.lo is not None and fit.lo > 0 and fit.value > threshold
    hours = None
    if growing and limit is not None and fit.value is not None and fit.level_end is not None:
        hours = max(0.0, (limit - fit.level_end) / fit.value)
    return Drift(fit, "growing" if growing else "flat", threshold, limit, hours)


@dataclass(frozen=True)
class SoakInputs:
    """What a soak's drift analysis needs besides its tables (from the experiment and the soak)."""

    thresholds: Mapping[str, float]
    slo_p95_ms: float | None = None
    max_error_ratio: float | None = None
    mem_limit_mib: float | None = None
    """Used when the metrics carry no ``mem_limit`` series."""
    queue_limit_jobs: float | None = None
    min_hours_to_limit: float | None = None
    confidence: float = 0.95
    bins: int = 30


def soak_drift(seconds: pd.DataFrame, metrics: pd.DataFrame, inputs: SoakInputs) -> SoakDrift:
    """Fit every drift over the measured seconds (warm-up excluded) and judge the soak."""
    if "t" not in seconds.columns:  # no second measured (stopped at once)
        seconds = pd.DataFrame({"t": [], "phase": [], "ok": [], "errors": [], "p95_ms": []})
    if "t" not in metrics.columns:
        metrics = pd.DataFrame({"metric": [], "group": [], "t": [], "value": []})
    measured = seconds[seconds["phase"] == "measure"] if "phase" in seconds.columns else seconds
    t0 = float(measured["t"].min()) if not measured.empty else -math.inf
    met = metrics[metrics["t"] >= t0] if not metrics.empty else metrics
    fits, detail = _fits(measured, met, inputs)
    limits = {
        "mem_mib_per_hour": _mem_limit(met, inputs.mem_limit_mib),
        "queue_jobs_per_hour": inputs.queue_limit_jobs,
        "p95_ms_per_hour": inputs.slo_p95_ms,
        "error_ratio_per_hour": inputs.max_error_ratio,
    }
    drifts = {name: judge(fits[name], inputs.thresholds[name], limits[name]) for name in DRIFTS}
    reasons = [
        f"{name} {d.fit.value:.4g} [{d.fit.lo:.4g}, {d.fit.hi:.4g}] > {d.threshold:g}"
        for name, d in drifts.items()
        if d.verdict == "growing" and d.fit.value is not None and d.fit.lo is not None and d.fit.hi is not None
    ]
    if inputs.min_hours_to_limit is not None:
        reasons += [
            f"{name} reaches its limit in {d.hours_to_limit:.2f} h < {inputs.min_hours_to_limit:g} h"
            for name, d in drifts.items()
            if d.hours_to_limit is not None and d.hours_to_limit < inputs.min_hours_to_limit
        ]
    return SoakDrift(drifts, "fail" if reasons else "pass", reasons, detail)


def _fits(measured: pd.DataFrame, met: pd.DataFrame, inputs: SoakInputs) -> tuple[dict[str, Fit], dict[str, Any]]:
    kw: dict[str, Any] = {"bins": inputs.bins, "confidence": inputs.confidence}
    t = measured["t"].to_numpy(dtype=float)
    done = (measured["ok"] + measured["errors"]).to_numpy(dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        err_ratio = np.where(done > 0, measured["errors"].to_numpy(dtype=float) / done, np.nan)
    mem = _series(met, "mem_usage")
    queue = _series(met, "queue_size")
    if not queue.empty:
        queue = queue.groupby("t", as_index=False).agg(value=("value", "sum"))  # every queue together
    fits = {
        "mem_mib_per_hour": fit_slope(mem["t"], mem["value"] / MIB, mem["group"], **kw),
        "queue_jobs_per_hour": fit_slope(queue["t"], queue["value"], **kw),
        "p95_ms_per_hour": fit_slope(t, pd.to_numeric(measured["p95_ms"], errors="coerce").to_numpy(float), **kw),
        "error_ratio_per_hour": fit_slope(t, err_ratio, **kw),
    }
    tasks = int(mem["group"].nunique()) if not mem.empty else 0
    span = float(np.ptp(t)) + 1 if len(t) else 0.0
    per_task_hour = float(measured["ok"].sum()) / span * HOUR / tasks if tasks and span > 0 else None
    detail: dict[str, Any] = {
        "app_tasks_seen": tasks,
        "requests_per_task_per_hour": _r(per_task_hour),
        "measured_seconds": len(t),
        "mem_mib_per_1000_requests": None,
    }
    mem_fit = fits["mem_mib_per_hour"]
    if per_task_hour and mem_fit.value is not None:
        per_k = mem_fit.scaled(1000.0 / per_task_hour)
        detail["mem_mib_per_1000_requests"] = {"value": _r(per_k.value), "lo": _r(per_k.lo), "hi": _r(per_k.hi)}
    return fits, detail


def _series(met: pd.DataFrame, name: str) -> pd.DataFrame:
    if met.empty or "metric" not in met.columns:
        return pd.DataFrame({"t": [], "value": [], "group": []})
    part = met[(met["metric"] == name) & met["value"].notna()]
    return part[["t", "value", "group"]].astype({"t": float, "value": float})


def _mem_limit(met: pd.DataFrame, fallback_mib: float | None) -> float | None:
    limits = _series(met, "mem_limit")
    if limits.empty:
        return fallback_mib
    return float(limits["value"].min()) / MIB
