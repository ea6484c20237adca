"""Sizing production from a scaling curve: capacity measured at several staging task counts.

Linear sizing (``recommend.py``) assumes every added task adds the same throughput. Tasks that share
a database, a cache or a downstream round trip do not, so the curve is fitted across sizes with the
Universal Scalability Law (``capacity.analyze.usl``)::

    X(N) = lambda x N / (1 + sigma x (N - 1) + kappa x N x (N - 1))

- 3 or more sizes: the USL by bounded least squares on relative residuals (each size counts alike,
  whatever its throughput). Intervals come from refitting to capacities drawn from each size's own
  interval (and the fit's scatter when there are spare degrees of freedom).
- 2 sizes: two points cannot show a retrograde term, so kappa is 0 and the model is linear with
  contention (Amdahl). Of the models the two sizes' intervals allow, the most conservative one is
  used: the smaller size at its interval's top, the larger at its bottom (the largest sigma).
- 1 size: the line (``sigma = kappa = 0``), said in the notes.

X(N) is each size's SLO capacity (the rate every guard held at), the per-task figure the linear rule
sizes from too, so a one-size curve gives exactly the linear answer. A size measured more than once
(``capacity scale --repeat K``) enters the fit once per replicate: their spread is run-to-run variance
and counts in the scatter. Exactly 3 sizes fit the USL's 3 parameters exactly (nothing checks it); with
4 or more ``leave_one_out`` predicts each size from the others.

Production's task count is read off the curve with the same rules as the line
(``capacity.size.rules``): the fewest tasks N with X(N) at or above demand x (1 + throughput
headroom), then rounded (a whole number per zone, one spare with N+1); its range comes from the
fit's uncertainty (the refits' answers). A count beyond the curve's peak is refused with the reason: past it every added
task lowers throughput. The recommendation shows the linear and the curve answers side by side and
which binds (the larger count). See docs/design.md, "Analysis and sizing".
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import optimize, stats

from capacity.analyze.usl import usl_throughput
from capacity.core.errors import CapacityError
from capacity.plan.experiment import Production
from capacity.size import rules
from capacity.size.rules import round_to_zones

MC_DRAWS = 200
CURVE_SEARCH_MAX = 4096
"""The most tasks looked at on a curve with no peak."""


@dataclass(frozen=True)
class SizePoint:
    """Capacity measured at one staging app task count, with its interval when known."""

    app_tasks: int
    capacity_rps: float
    lo: float | None = None
    hi: float | None = None


@dataclass
class CurveFit:
    """A fitted capacity-vs-tasks curve; ``intervals`` hold (lo, hi) by parameter name."""

    model: str
    sigma: float
    kappa: float
    lam: float
    intervals: dict[str, tuple[float, float]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    alternatives: list[tuple[float, float, float]] = field(default_factory=list, repr=False)
    """(sigma, kappa, lambda) sets the data allow (the refits): the task count's range comes from them."""
    sizes: list[int] = field(default_factory=list)

    @property
    def peak_tasks(self) -> float | None:
        return math.sqrt((1 - self.sigma) / self.kappa) if self.kappa > 0 and self.sigma < 1 else None

    def rps_at(self, n: float) -> float:
        return float(usl_throughput(np.array([float(n)]), self.sigma, self.kappa, self.lam)[0])

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "sigma": self.sigma,
            "kappa": self.kappa,
            "lambda": self.lam,
            "peak_tasks": self.peak_tasks,
            "intervals": {k: [lo, hi] for k, (lo, hi) in self.intervals.items()},
            "notes": list(self.notes),
        }


def _sd(p: SizePoint, z: float) -> float:
    """A size's standard error from its interval (the interval's half-width over z); 0 without one."""
    if p.lo is None or p.hi is None or not p.hi > p.lo:
        return 0.0
    return (p.hi - p.lo) / (2 * z)


STARTS = ((0.05, 0.001), (0.2, 0.02), (0.5, 0.1), (0.0, 0.0))


def _usl_least_squares(
    n: np.ndarray, x: np.ndarray, starts: Sequence[tuple[float, float]] = STARTS
) -> tuple[float, float, float]:
    """(sigma, kappa, lambda) minimising the relative residuals, best of the starting points."""

    def resid(p: np.ndarray) -> np.ndarray:
        return (usl_throughput(n, p[0], p[1], p[2]) - x) / x

    lam0 = float(np.max(x / n))
    best = None
    for s0, k0 in starts:
        res = optimize.least_squares(
            resid, x0=[s0, k0, lam0], bounds=([0.0, 0.0, 1e-9], [0.999, np.inf, np.inf]), method="trf"
        )
        if best is None or res.cost < best.cost:
            best = res
    assert best is not None
    return float(best.x[0]), float(best.x[1]), float(best.x[2])


def _amdahl(n1: float, x1: float, n2: float, x2: float) -> tuple[float, float]:
    """(sigma, lambda) of X(N) = lambda N / (1 + sigma (N - 1)) through two points; sigma kept in [0, 1)."""
    # lambda * n/x - sigma * (n - 1) = 1 for both points: two linear equations
    a = np.array([[n1 / x1, -(n1 - 1)], [n2 / x2, -(n2 - 1)]])
    _, sigma = np.linalg.solve(a, np.ones(2))
    sigma = float(min(max(sigma, 0.0), 0.999))
    return sigma, float(x1 * (1 + sigma * (n1 - 1)) / n1)


def _quantiles(values: np.ndarray, confidence: float) -> tuple[float, float]:
    a = (1 - confidence) / 2
    return float(np.quantile(values, a)), float(np.quantile(values, 1 - a))


def _fit_usl(points: Sequence[SizePoint], confidence: float, seed: int) -> CurveFit:
    n = np.array([p.app_tasks for p in points], dtype=float)
    x = np.array([p.capacity_rps for p in points], dtype=float)
    sigma, kappa, lam = _usl_least_squares(n, x)
    z = float(stats.norm.ppf(0.5 + confidence / 2))
    sd = np.array([_sd(p, z) for p in points])
    dof = len(points) - 3
    if dof > 0:  # the curve's own scatter, as a relative error per size
        rel = (usl_throughput(n, sigma, kappa, lam) - x) / x
        sd = np.maximum(sd, x * float(np.sqrt(np.sum(rel**2) / dof)))
    fit = CurveFit("usl", sigma, kappa, lam)
    if dof == 0:
        fit.notes.append(
            "three sizes fit the USL's three parameters exactly: the fit is exact and uncheckable (no size is "
            "left to test it) and its intervals come from each size's own interval only; measure a 4th size "
            "(or --repeat) to check it"
        )
    if not np.any(sd > 0):
        fit.notes.append("no per-size intervals and no spare sizes: the parameters have no interval")
        return fit
    rng = np.random.default_rng(seed)
    draws = []
    for _ in range(MC_DRAWS):
        xs = np.maximum(x + rng.normal(0.0, 1.0, len(x)) * sd, 1e-9)
        draws.append(_usl_least_squares(n, xs, ((sigma, kappa),)))
    fit.alternatives = [(float(a), float(b), float(c)) for a, b, c in draws]
    d = np.array(draws)
    for i, name in enumerate(("sigma", "kappa", "lambda")):
        fit.intervals[name] = _quantiles(d[:, i], confidence)
    peaks = np.array([math.sqrt((1 - s) / k) for s, k, _ in draws if k > 0 and s < 1])
    if len(peaks) >= 0.9 * MC_DRAWS:
        fit.intervals["peak_tasks"] = _quantiles(peaks, confidence)
    elif fit.peak_tasks is not None:
        fit.notes.append("in more than 10% of refits kappa is 0 (no peak): the peak has no interval")
    return fit


def _fit_two(points: Sequence[SizePoint]) -> CurveFit:
    small, large = sorted(points, key=lambda p: p.app_tasks)
    top = small.hi if small.hi is not None else small.capacity_rps
    bottom = large.lo if large.lo is not None else large.capacity_rps
    sigma, lam = _amdahl(small.app_tasks, top, large.app_tasks, bottom)
    s_opt, lam_opt = _amdahl(
        small.app_tasks,
        small.lo if small.lo is not None else small.capacity_rps,
        large.app_tasks,
        large.hi if large.hi is not None else large.capacity_rps,
    )
    fit = CurveFit("amdahl (conservative)", sigma, 0.0, lam, alternatives=[(s_opt, 0.0, lam_opt)])
    fit.intervals = {
        "sigma": (min(s_opt, sigma), max(s_opt, sigma)),
        "kappa": (0.0, 0.0),
        "lambda": (min(lam, lam_opt), max(lam, lam_opt)),
    }
    fit.notes.append(
        "two sizes: linear with contention (kappa taken as 0), the most conservative the intervals allow "
        f"({small.app_tasks} tasks at its interval's top, {large.app_tasks} at its bottom); a third size "
        "would show a retrograde term"
    )
    return fit


def pool_replicates(points: Sequence[SizePoint], confidence: float = 0.95) -> list[SizePoint]:
    """One point per size: replicates' mean, the interval widened to their run-to-run spread."""
    out = []
    for n in sorted({p.app_tasks for p in points}):
        reps = [p for p in points if p.app_tasks == n]
        if len(reps) == 1:
            out.append(reps[0])
            continue
        x = np.array([p.capacity_rps for p in reps])
        mean = float(np.mean(x))
        half = float(stats.t.ppf(0.5 + confidence / 2, len(x) - 1)) * float(np.std(x, ddof=1)) / math.sqrt(len(x))
        los = [p.lo for p in reps if p.lo is not None]
        his = [p.hi for p in reps if p.hi is not None]
        lo = min(mean - half, float(np.mean(los))) if los else mean - half
        hi = max(mean + half, float(np.mean(his))) if his else mean + half
        out.append(SizePoint(n, mean, min(lo, mean), max(hi, mean)))
    return out


def fit_curve(points: Sequence[SizePoint], *, confidence: float = 0.95, seed: int = 0) -> CurveFit:
    """The scaling curve through the measured sizes (USL with >= 3 sizes; see the module docstring)."""
    pts = [p for p in points if p.app_tasks >= 1 and p.capacity_rps > 0 and math.isfinite(p.capacity_rps)]
    if not pts:
        raise CapacityError("scaling curve: no size has a measured capacity")
    sizes = sorted({p.app_tasks for p in pts})
    if len(sizes) >= 3:
        fit = _fit_usl(pts, confidence, seed)
    elif len(sizes) == 2:
        fit = _fit_two(pool_replicates(pts, confidence))
    else:
        p = pool_replicates(pts, confidence)[0]
        fit = CurveFit("linear", 0.0, 0.0, p.capacity_rps / p.app_tasks)
        if p.lo is not None and p.hi is not None and p.lo > 0:
            fit.alternatives = [(0.0, 0.0, p.lo / p.app_tasks), (0.0, 0.0, p.hi / p.app_tasks)]
        fit.notes.append("one size: the curve is the line (measure at least two sizes to see contention)")
    fit.sizes = sizes
    return fit


def leave_one_out(points: Sequence[SizePoint]) -> list[dict[str, Any]]:
    """With 4+ sizes: each size predicted by the USL fitted to the others, and the error in %."""
    sizes = sorted({p.app_tasks for p in points})
    if len(sizes) < 4:
        return []
    out = []
    for n in sizes:
        rest = [p for p in points if p.app_tasks != n]
        measured = float(np.mean([p.capacity_rps for p in points if p.app_tasks == n]))
        sigma, kappa, lam = _usl_least_squares(
            np.array([p.app_tasks for p in rest], dtype=float), np.array([p.capacity_rps for p in rest])
        )
        predicted = float(usl_throughput(np.array([float(n)]), sigma, kappa, lam)[0])
        out.append(
            {
                "app_tasks": n,
                "measured_rps": measured,
                "predicted_rps": predicted,
                "error_pct": 100.0 * (predicted - measured) / measured,
            }
        )
    return out


@dataclass
class CurveSizing:
    """Production's app tasks from the line and from the curve, and which binds."""

    need_rps: float
    app_tasks_linear: int
    app_tasks_curve: int | None
    binding: str
    per_task_rps: float
    linear_from_tasks: int
    curve_min_tasks: int | None = None
    curve_rps_at_answer: float | None = None
    refused: str | None = None
    notes: list[str] = field(default_factory=list)
    curve_range: list[int] | None = None
    """[lo, hi] of the curve's answer over the fit's uncertainty."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "app_tasks_curve": self.app_tasks_curve,
            "app_tasks_curve_range": self.curve_range,
            "app_tasks_linear": self.app_tasks_linear,
            "binding": self.binding,
            "need_rps": self.need_rps,
            "per_task_rps_linear": self.per_task_rps,
            "linear_from_tasks": self.linear_from_tasks,
            "curve_min_tasks": self.curve_min_tasks,
            "curve_rps_at_answer": self.curve_rps_at_answer,
            "refused": self.refused,
            "notes": list(self.notes),
        }


def fewest_tasks(rps_at: Callable[[int], float], need_rps: float, peak_tasks: float | None) -> int | None:
    """The fewest tasks whose capacity reaches ``need_rps`` without passing the peak; None if none does."""
    top = math.floor(peak_tasks) + 1 if peak_tasks is not None else CURVE_SEARCH_MAX
    for n in range(1, top + 1):
        if rps_at(n) >= need_rps * (1 - 1e-9):
            return n if peak_tasks is None or n <= math.ceil(peak_tasks) else None
    return None


def curve_tasks(
    rps_at: Callable[[int], float], peak_tasks: float | None, need_rps: float, production: Production
) -> tuple[int | None, int | None, str | None]:
    """(fewest tasks, rounded answer, refusal reason) for a curve ``rps_at``; the truth's answer uses it too."""
    fewest = fewest_tasks(rps_at, need_rps, peak_tasks)
    if fewest is None:
        best = max(rps_at(n) for n in range(1, math.ceil(peak_tasks or 1) + 1))
        where = f"{peak_tasks:.1f} tasks" if peak_tasks is not None else f"{CURVE_SEARCH_MAX} tasks"
        return (
            None,
            None,
            (
                f"refused: production needs {need_rps:.1f} req/s of capacity but the curve peaks at {best:.1f} req/s "
                f"near {where}; past the peak each added task lowers throughput, so no task count carries it"
            ),
        )
    answer = round_to_zones(fewest, production.zones, n_plus_one=production.n_plus_one, min_tasks=production.min_tasks)
    if peak_tasks is not None and answer > peak_tasks and rps_at(answer) < need_rps:
        return (
            fewest,
            None,
            (
                f"refused: rounding to {production.zones} zone(s){' with N+1' if production.n_plus_one else ''} gives "
                f"{answer} tasks, beyond the curve's peak ({peak_tasks:.1f} tasks) where {answer} tasks carry only "
                f"{rps_at(answer):.1f} req/s of the {need_rps:.1f} needed"
            ),
        )
    return fewest, answer, None


def size_from_curve(
    fit: CurveFit, points: Sequence[SizePoint], *, demand_rps: float, production: Production, staging_tasks: int
) -> CurveSizing:
    """Production's app tasks from the line (per-task capacity at the size nearest ``staging_tasks``,
    the usual staging size) and from the curve, side by side, both by the rules of ``capacity.size.rules``."""
    if not points:
        raise CapacityError("scaling curve: no size to size from")
    need = rules.throughput_need(demand_rps, production)
    pooled = pool_replicates(points)
    base = min(pooled, key=lambda p: (abs(p.app_tasks - staging_tasks), -p.app_tasks))
    per_task = base.capacity_rps / base.app_tasks
    linear = rules.app_tasks(rules.tasks_by_throughput(demand_rps, per_task, production), production)
    fewest, answer, refused = curve_tasks(lambda n: fit.rps_at(n), fit.peak_tasks, need, production)
    if answer is None:
        binding = "curve (refused)"
    else:
        binding = "curve" if answer > linear else ("linear" if linear > answer else "both")
    sizing = CurveSizing(
        need_rps=need,
        app_tasks_linear=linear,
        app_tasks_curve=answer,
        binding=binding,
        per_task_rps=per_task,
        linear_from_tasks=base.app_tasks,
        curve_min_tasks=fewest,
        curve_rps_at_answer=fit.rps_at(answer) if answer is not None else None,
        refused=refused,
        curve_range=curve_range(fit, need, production, answer),
    )
    top = max(p.app_tasks for p in points)
    if answer is not None and answer > top:
        sizing.notes.append(f"the curve's answer ({answer} tasks) is beyond the largest size measured ({top})")
    return sizing


def curve_range(fit: CurveFit, need_rps: float, production: Production, answer: int | None) -> list[int] | None:
    """[lo, hi] of the curve's answer over the parameter sets the data allow (95% of the refits)."""
    if answer is None:
        return None
    answers = []
    for sigma, kappa, lam in fit.alternatives:
        alt = CurveFit(fit.model, sigma, kappa, lam)
        _, n, _ = curve_tasks(alt.rps_at, alt.peak_tasks, need_rps, production)
        answers.append(n if n is not None else CURVE_SEARCH_MAX)  # a refit that cannot carry it: the top
    if not answers:
        return [answer, answer]
    a = np.array(answers, dtype=float)
    lo, hi = (float(np.min(a)), float(np.max(a))) if len(a) <= 2 else _quantiles(a, 0.95)
    return [min(math.floor(lo), answer), max(math.ceil(hi), answer)]
