"""``results list``: one row per run folder, from its manifest and summary (pure over ``LoadedRun``)."""

from __future__ import annotations

from typing import Any

from capacity.core.models import Estimate
from capacity.report.compare import figure_of, usable
from capacity.report.content import recommendation_headline
from capacity.report.estimate_text import format_estimate
from capacity.store import LoadedRun

LIST_COLUMNS: tuple[str, ...] = (
    "run_id",
    "started_at",
    "experiment",
    "target",
    "slo_capacity_rps",
    "capacity_lo",
    "capacity_hi",
    "capacity_reached",
    "saturation_rps",
    "knee_rps",
    "stopped_reason",
    "stages",
    "app_tasks",
    "sidekiq_tasks",
    "recommendation",
    "path",
)
"""Keys of each row (``results list --json`` and ``notebook.load_all`` columns; docs/results.md)."""


def run_row(run: LoadedRun) -> dict[str, Any]:
    s = run.summary
    rec = s.recommendation if s is not None else None
    row: dict[str, Any] = dict.fromkeys(LIST_COLUMNS)
    row.update(
        run_id=run.run_id,
        started_at=run.started_at or None,
        experiment=run.experiment_name,
        target=(s.target if s is not None else run.manifest.get("target")),
        stages=(len(s.stages) if s is not None else len(run.stages)),
        stopped_reason=(s.stopped_reason if s is not None else "unfinished"),
        recommendation=recommendation_headline(rec) if rec else None,
        app_tasks=(rec or {}).get("app_tasks"),
        sidekiq_tasks=(rec or {}).get("sidekiq_tasks"),
        path=str(run.path),
    )
    if s is not None:
        slo = figure_of(s, "slo_capacity", "slo_capacity_rps")
        row.update(
            slo_capacity_rps=slo.value,
            capacity_lo=slo.lo,
            capacity_hi=slo.hi,
            capacity_reached=usable(slo),
            saturation_rps=s.saturation_rps,
            knee_rps=s.knee_rps,
        )
    return row


def _fitted(s: dict[str, Any]) -> float | None:
    """A size's X(N) as fitted: its SLO capacity (a series written before it: the best goodput)."""
    return s["capacity_rps"] if "capacity_rps" in s else s.get("throughput_rps")


def series_lines(series: list[dict[str, Any]]) -> list[str]:
    """``results list``: one line per scaling series (``capacity scale``): sizes, fit, production answer."""
    if not series:
        return []
    lines = ["", "scaling series (capacity scale):"]
    for d in series:
        sizes = ", ".join(
            f"{s['app_tasks']}: {_fitted(s):.1f}" if _fitted(s) is not None else f"{s['app_tasks']}: -"
            for s in d.get("sizes", [])
        )
        fit, rec = d.get("fit") or {}, d.get("recommendation") or {}
        fit_text = f"{fit['model']} sigma {fit['sigma']:.3g} kappa {fit['kappa']:.3g}" if fit else "no fit"
        curve = rec.get("app_tasks_curve") or ("refused" if rec.get("refused") else "-")
        rec_text = f"curve {curve} / linear {rec.get('app_tasks_linear', '-')} ({rec.get('binding', '-')})"
        if rec.get("app_tasks") is not None:
            rec_text = f"{rec['app_tasks']} app tasks {rec.get('app_tasks_range') or ''}: {rec_text}"
        started = str(d.get("started_at") or "")[:19].replace("T", " ")
        lines.append(
            f"  {started}  {d.get('series_id')}  {d.get('experiment')}  req/s by tasks [{sizes}]  {fit_text}  "
            f"{rec_text}  {d.get('stopped_reason', '')}"
        )
    return lines


def capacity_text(row: dict[str, Any]) -> str:
    """``120.0 [114.0, 126.0]``; ``> 120.0`` for a lower bound; ``-`` when not determined."""
    figure = Estimate(
        value=row.get("slo_capacity_rps"),
        lo=row.get("capacity_lo"),
        hi=row.get("capacity_hi"),
        reached=bool(row.get("capacity_reached")),
    )
    return format_estimate(figure)
