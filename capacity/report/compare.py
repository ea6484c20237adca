"""Comparing two runs: is the candidate's capacity lower than the baseline's by more than noise?

Pure: two ``RunSummary`` objects in, a ``Comparison`` out. A drop is a *regression* only when it
exceeds the threshold **and** the two intervals do not overlap, so a noisy nightly run does not page
anyone; a run whose capacity was not determined (missing, not reached, insufficient data) makes the
comparison *inconclusive* rather than a silent pass.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from capacity.core.models import Estimate, RunSummary

CompareVerdict = Literal["ok", "regression", "improvement", "inconclusive"]

EXIT_CODES: dict[str, int] = {"ok": 0, "improvement": 0, "regression": 1, "inconclusive": 3}
"""Exit code per verdict, shared by ``results compare`` and ``nightly`` (2 is reserved for errors)."""

FIGURES: tuple[tuple[str, str], ...] = (
    ("slo_capacity", "slo_capacity_rps"),
    ("saturation", "saturation_rps"),
    ("knee", "knee_rps"),
)
"""(estimate name, summary field): the SLO capacity decides the verdict; the others are context."""


FIGURE_KEYS = ("value", "lo", "hi", "reached", "signal", "note", "extrapolated")
"""What ``to_dict`` writes of each run's figure (an ``Estimate``), in this order."""


def usable(figure: Estimate) -> bool:
    """A figure a verdict can rest on: present, reached, and not flagged as thin data."""
    return figure.value is not None and figure.reached and not figure.note.startswith("insufficient")


def interval(figure: Estimate) -> tuple[float, float] | None:
    """The interval, or the point itself when no interval was computed."""
    if figure.value is None:
        return None
    lo = figure.lo if figure.lo is not None else figure.value
    hi = figure.hi if figure.hi is not None else figure.value
    return (min(lo, hi), max(lo, hi))


@dataclass(frozen=True)
class FigureDiff:
    name: str
    baseline: Estimate
    candidate: Estimate
    change_pct: float | None
    """(candidate - baseline) / baseline, in percent; negative is a drop."""
    overlap: bool | None
    """Whether the two intervals overlap (None when either figure is missing)."""


@dataclass
class Comparison:
    baseline_id: str
    candidate_id: str
    verdict: CompareVerdict
    reason: str
    max_drop_pct: float
    figures: list[FigureDiff] = field(default_factory=list)
    recommendation: dict[str, Any] = field(default_factory=dict)
    """Changes in the sizing recommendation: ``{key: [baseline, candidate]}`` for keys that differ."""

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.verdict]

    def figure(self, name: str) -> FigureDiff:
        return next(f for f in self.figures if f.name == name)

    def to_dict(self) -> dict[str, Any]:
        return {
            "baseline": self.baseline_id,
            "candidate": self.candidate_id,
            "verdict": self.verdict,
            "reason": self.reason,
            "max_drop_pct": self.max_drop_pct,
            "figures": {
                f.name: {
                    "baseline": {k: getattr(f.baseline, k) for k in FIGURE_KEYS},
                    "candidate": {k: getattr(f.candidate, k) for k in FIGURE_KEYS},
                    "change_pct": f.change_pct,
                    "intervals_overlap": f.overlap,
                }
                for f in self.figures
            },
            "recommendation_changes": self.recommendation,
        }


def figure_of(summary: RunSummary, name: str, field_name: str) -> Estimate:
    """A figure from the summary: its ``estimates`` entry when present (the SLO capacity with the
    summary's interval when the entry has none), else the bare field."""
    est: Estimate | None = summary.estimates.get(name)
    value = getattr(summary, field_name)
    if est is None:
        lo, hi = summary_interval(summary) if name == "slo_capacity" else (None, None)
        return Estimate(value=value, lo=lo, hi=hi)
    lo, hi = est.lo, est.hi
    if name == "slo_capacity" and lo is None and hi is None:
        lo, hi = summary_interval(summary)
    return est.model_copy(update={"value": est.value if est.value is not None else value, "lo": lo, "hi": hi})


def summary_interval(summary: RunSummary) -> tuple[float | None, float | None]:
    ci = [*summary.capacity_interval, None, None]
    return ci[0], ci[1]


def _overlap(a: Estimate, b: Estimate) -> bool | None:
    ia, ib = interval(a), interval(b)
    if ia is None or ib is None or not a.reached or not b.reached:
        return None  # a lower bound has no interval to compare
    return ia[0] <= ib[1] and ib[0] <= ia[1]


def _diff(name: str, a: Estimate, b: Estimate) -> FigureDiff:
    change = None
    if a.value is not None and b.value is not None and a.value != 0:
        change = (b.value - a.value) / abs(a.value) * 100.0
    return FigureDiff(name=name, baseline=a, candidate=b, change_pct=change, overlap=_overlap(a, b))


def _why_unusable(label: str, f: Estimate) -> str:
    if f.value is None:
        return f"{label} has no SLO capacity{f': {f.note}' if f.note else ''}"
    if f.note.startswith("insufficient"):
        return f"{label}: {f.note}"
    return f"{label}'s SLO capacity was not reached (every stage passed; {f.value:.4g} req/s is a lower bound)"


def _recommendation_changes(a: RunSummary, b: RunSummary) -> dict[str, Any]:
    ra, rb = a.recommendation or {}, b.recommendation or {}
    names = ("app_tasks", "app_tasks_range", "sidekiq_tasks", "tasks_per_zone", "binding_constraint")
    keys = [k for k in names if k in ra or k in rb]
    return {k: [ra.get(k), rb.get(k)] for k in keys if ra.get(k) != rb.get(k)}


def compare_runs(a: RunSummary, b: RunSummary, max_drop_pct: float = 10.0) -> Comparison:
    """Compare candidate ``b`` against baseline ``a`` on SLO capacity (saturation and knee as context)."""
    if max_drop_pct < 0:
        raise ValueError("max_drop_pct must be >= 0")
    diffs = [_diff(name, figure_of(a, name, fld), figure_of(b, name, fld)) for name, fld in FIGURES]
    main = diffs[0]
    verdict: CompareVerdict
    if not usable(main.baseline) or not usable(main.candidate):
        verdict = "inconclusive"
        reasons = [
            _why_unusable(lbl, f)
            for lbl, f in (("baseline", main.baseline), ("candidate", main.candidate))
            if not usable(f)
        ]
        reason = "; ".join(reasons)
    else:
        assert main.change_pct is not None and main.baseline.value is not None and main.candidate.value is not None
        change, ov = main.change_pct, bool(main.overlap)
        what = (
            f"SLO capacity {main.baseline.value:.4g} -> {main.candidate.value:.4g} req/s "
            f"({change:+.1f}%, threshold {max_drop_pct:g}%, "
            f"intervals {'overlap' if ov else 'do not overlap'})"
        )
        if -change > max_drop_pct and not ov:
            verdict = "regression"
        elif change > max_drop_pct and not ov:
            verdict = "improvement"
        else:
            verdict = "ok"
        reason = what
    return Comparison(
        baseline_id=a.run_id,
        candidate_id=b.run_id,
        verdict=verdict,
        reason=reason,
        max_drop_pct=max_drop_pct,
        figures=diffs,
        recommendation=_recommendation_changes(a, b),
    )
