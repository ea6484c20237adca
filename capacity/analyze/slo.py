"""SLO capacity: the highest rate at which every guard holds.

Each guard becomes an *excess* per stage (value / limit; above 1 breaches). Stages are taken in rate
order, whatever order they ran in (the adaptive search ramps, then bisects below the first failure).
The capacity lies between the highest passing rate below the *lowest* failing rate and that failing
rate; it is placed where the first guard to break crosses 1, by linear interpolation in rate (latency
is convex in rate, so this errs low: on the safe side). A failed stage that the runner aborted after a
few seconds counts like any other failure: its figures cover the seconds it ran.

Contradictions (a stage that passed *above* the lowest failing rate, from noise or a transient) never
raise the capacity: the lowest failure bounds it, and ``passes_above_first_failure`` lists them so the
analysis can say so in its notes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from capacity.analyze.table import StageTable
from capacity.plan.experiment import Guards


@dataclass(frozen=True)
class GuardCheck:
    name: str
    excess: Callable[[StageTable, Guards], np.ndarray | None]


def _ratio(values: np.ndarray | None, limit: float | None) -> np.ndarray | None:
    if values is None or limit is None or limit <= 0:
        return None
    return values / limit


def _errors(t: StageTable, g: Guards) -> np.ndarray | None:
    values = t.column("error_ratio")
    if values is None:
        return None
    if g.max_error_ratio > 0:
        return values / g.max_error_ratio
    return np.where(values > 0, np.inf, 0.0)


def _goodput(t: StageTable, g: Guards) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(t.rate > 0, t.achieved / t.rate, 1.0)  # a stage offered nothing kept up with it
        return np.where(ratio > 0, g.min_goodput_ratio / ratio, np.inf)


CHECKS: tuple[GuardCheck, ...] = (
    GuardCheck("error_ratio", lambda t, g: _errors(t, g)),
    GuardCheck("p95_ms", lambda t, g: _ratio(t.column("p95_ms"), g.slo_p95_ms)),
    GuardCheck("p99_ms", lambda t, g: _ratio(t.column("p99_ms"), g.slo_p99_ms)),
    GuardCheck("goodput", _goodput),
    GuardCheck("cpu_pct", lambda t, g: _ratio(t.column("cpu_pct"), g.max_cpu_pct)),
    GuardCheck("mem_pct", lambda t, g: _ratio(t.column("mem_pct"), g.max_mem_pct)),
    GuardCheck(
        "queue_latency_s",
        lambda t, g: _ratio(
            t.column("queue_latency_s_max")
            if t.column("queue_latency_s_max") is not None
            else t.column("queue_latency_s"),
            g.max_queue_latency_s,
        ),
    ),
    GuardCheck("queue_growth", lambda t, g: _ratio(t.column("queue_growth_per_s"), g.max_queue_growth_per_s)),
    GuardCheck("backlog", lambda t, g: _ratio(t.column("backlog_max"), g.max_backlog)),
)


def guard_excess(table: StageTable, guards: Guards) -> dict[str, np.ndarray]:
    """Excess (value / limit) per guard per stage; NaN where a stage lacks the figure."""
    out = {}
    for check in CHECKS:
        values = check.excess(table, guards)
        if values is not None:
            out[check.name] = np.asarray(values, dtype=float)
    return out


def passing_mask(table: StageTable, guards: Guards | None) -> np.ndarray:
    """A stage passes when its recorded verdict (if any) is 'pass' and no guard we can check breaks.

    The runner also judges sliding windows we cannot recompute, so a recorded 'fail' stands.
    """
    n = len(table.frame)
    verdicts = table.frame["verdict"].astype(str).str.strip().str.lower().to_numpy()
    has_verdict = np.array([v in ("pass", "fail") for v in verdicts])
    ok = np.where(has_verdict, verdicts == "pass", True)
    if guards is None and has_verdict.all():
        return ok
    for excess in guard_excess(table, guards or Guards()).values():  # type: ignore[call-arg]
        ok &= ~(np.nan_to_num(excess, nan=0.0) > 1.0)
    return ok if n else np.zeros(0, dtype=bool)


def passes_above_first_failure(table: StageTable, guards: Guards | None) -> list[float]:
    """Rates of stages that passed above the lowest failing rate (contradictions; they are ignored)."""
    ok = passing_mask(table, guards)
    if not (~ok).any():
        return []
    lowest_fail = float(table.rate[~ok].min())
    return [float(r) for r in table.rate[ok] if r > lowest_fail]


def slo_capacity_point(table: StageTable, guards: Guards | None) -> tuple[float | None, bool, str]:
    """(value, reached, signal): reached False means no stage failed, value is then a lower bound."""
    rate = table.rate
    if len(rate) < 1:
        return None, False, ""
    ok = passing_mask(table, guards)
    if not (~ok).any():
        return float(rate.max()), False, "all stages passed"
    first_fail = int(np.argmax(~ok))
    # the highest passing rate strictly below the lowest failing one (a pass at the same rate as the
    # failure, e.g. a repeated stage, is a contradiction and does not count)
    below = np.flatnonzero(ok & (rate < rate[first_fail]))
    if below.size == 0:
        return None, True, "no stage met every guard"
    lo_i, hi_i = int(below[-1]), first_fail
    lo, hi = float(rate[lo_i]), float(rate[hi_i])
    crossings = []
    for name, excess in guard_excess(table, guards or Guards()).items():  # type: ignore[call-arg]
        e_lo, e_hi = excess[lo_i], excess[hi_i]
        if not (np.isfinite(e_lo) and e_hi > 1.0 and e_lo <= 1.0):
            continue
        frac = 0.0 if not np.isfinite(e_hi) or e_hi == e_lo else (1.0 - e_lo) / (e_hi - e_lo)
        crossings.append((lo + frac * (hi - lo), name))
    if not crossings:
        reason = str(table.frame["reasons"].iloc[hi_i]) if "reasons" in table.frame.columns else ""
        return (
            lo,
            True,
            f"verdict of the stage at {hi:g} rps" + (f" ({reason})" if reason and reason != "nan" else ""),
        )
    value, name = min(crossings)
    return float(value), True, name
