"""What a report says, gathered from a run folder into one plain structure (no HTML, no plotting).

The HTML page and ``summary.md`` both render this, so the numbers in the two always agree and
match ``summary.json``. A run interrupted before its summary was written still gets a report built
from its finished stages.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from capacity.analyze.bottleneck import bottleneck_text
from capacity.core.models import Estimate, RunSummary
from capacity.report.compare import summary_interval
from capacity.report.estimate_text import format_estimate, truth_line
from capacity.report.links import run_dashboard, stage_dashboards
from capacity.store import LoadedRun

ESTIMATE_ORDER: tuple[tuple[str, str, str], ...] = (
    ("slo_capacity", "slo_capacity_rps", "SLO capacity"),
    ("saturation", "saturation_rps", "Saturation throughput"),
    ("knee", "knee_rps", "Knee"),
    ("queueing", "", "Queueing-model saturation"),
)


@dataclass
class EstimateRow:
    key: str
    label: str
    value: float | None
    lo: float | None
    hi: float | None
    signal: str
    method: str
    reached: bool
    extrapolated: bool
    note: str

    def text(self) -> str:
        """``123.4 req/s [110.0, 130.2]``, marked as a lower bound or extrapolated; ``not determined`` if absent."""
        return format_estimate(self, unit=" req/s", missing="not determined")


@dataclass
class ReportContent:
    run_id: str
    experiment: str
    target: str
    started_at: str
    ended_at: str
    stopped_reason: str
    estimates: list[EstimateRow]
    recommendation: dict[str, Any] | None
    search_path: list[dict[str, Any]]
    stages: pd.DataFrame
    seconds: pd.DataFrame
    guards: dict[str, Any]
    manifest: dict[str, Any]
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    truth: str | None = None
    partial: bool = False
    """True when the run has no summary.json (interrupted hard): figures then come from stages only."""
    dashboard: str | None = None
    """The team's Datadog dashboard (``[metrics] dashboard_url``) over the run's window."""
    stage_dashboards: dict[int, str] = field(default_factory=dict)
    """Stage index -> the dashboard over that stage's window."""
    endpoints: pd.DataFrame = field(default_factory=pd.DataFrame)
    """Per stage and endpoint figures (empty for runs recorded before them)."""
    flows: pd.DataFrame = field(default_factory=pd.DataFrame)
    """Per stage and session flow figures (empty without session flows)."""
    bottlenecks: list[str] = field(default_factory=list)
    """What limited the first failing stage, then each later failing stage, one line each."""

    def estimates_json(self) -> dict[str, dict[str, Any]]:
        """Estimates as plain dicts (what the plotting functions take)."""
        return {e.key: {"value": e.value, "lo": e.lo, "hi": e.hi, "reached": e.reached} for e in self.estimates}


def _row(
    key: str,
    label: str,
    est: Estimate | dict[str, Any] | None,
    fallback: float | None,
    interval: tuple[float | None, float | None] = (None, None),
) -> EstimateRow | None:
    if isinstance(est, Estimate):
        data: dict[str, Any] = est.model_dump()
    else:
        data = dict(est or {})
    if not data and fallback is None:
        return None
    value = data.get("value", fallback)
    if value is None:
        value = fallback
    lo, hi = data.get("lo"), data.get("hi")
    if lo is None and hi is None:
        lo, hi = interval
    return EstimateRow(
        key=key,
        label=label,
        value=value,
        lo=lo,
        hi=hi,
        signal=str(data.get("signal") or ""),
        method=str(data.get("method") or ""),
        reached=bool(data.get("reached", True)),
        extrapolated=bool(data.get("extrapolated", False)),
        note=str(data.get("note") or ""),
    )


def _estimates(summary: RunSummary | None, analysis: dict[str, Any] | None) -> list[EstimateRow]:
    rows: list[EstimateRow] = []
    for key, fld, label in ESTIMATE_ORDER:
        est: Estimate | dict[str, Any] | None = None
        if summary is not None and key in summary.estimates:
            est = summary.estimates[key]
        elif analysis and isinstance(analysis.get(key), dict):
            est = analysis[key]
        fallback = getattr(summary, fld) if summary is not None and fld else None
        interval: tuple[float | None, float | None] = (None, None)
        if key == "slo_capacity" and summary is not None:
            interval = summary_interval(summary)
        row = _row(key, label, est, fallback, interval)
        if row is not None:
            rows.append(row)
        elif key != "queueing":
            rows.append(EstimateRow(key, label, None, None, None, "", "", False, False, "no analysis in this run"))
    return rows


def _search_path(summary: RunSummary | None, stages: pd.DataFrame) -> list[dict[str, Any]]:
    if summary is not None and summary.search_path:
        return [dict(p) for p in summary.search_path]
    if stages.empty or "target_rps" not in stages.columns:
        return []
    path = []
    for _, r in stages.sort_values("index").iterrows():
        reasons = str(r.get("reasons") or "")
        path.append(
            {
                "index": int(r["index"]),
                "rate": float(r["target_rps"]),
                "probe": str(r.get("probe", "")),
                "why": "",
                "verdict": str(r.get("verdict", "")),
                "reason": reasons.split("; ")[0],
            }
        )
    return path


def _truth(summary: RunSummary | None) -> str | None:
    if summary is None or not summary.truth:
        return None
    return truth_line(summary)


def gather(run: LoadedRun) -> ReportContent:
    """Everything the report shows, from a loaded run folder."""
    s = run.summary
    m = run.manifest
    exp_raw = m.get("experiment")
    exp_data: dict[str, Any] = exp_raw if isinstance(exp_raw, dict) else {}
    guards = dict(exp_data.get("guards") or {}) if exp_data else {}
    notes = [str(n) for n in (run.analysis or {}).get("notes", [])]
    stopped = s.stopped_text if s is not None else "unknown (no summary.json: the run did not finish)"
    started = str((s.started_at if s is not None and s.started_at else m.get("started_at")) or "")
    ended = str((s.ended_at if s is not None and s.ended_at else m.get("ended_at")) or "")
    dash = (exp_data.get("metrics") or {}).get("dashboard_url") if exp_data else None
    return ReportContent(
        run_id=run.run_id,
        experiment=(s.experiment if s is not None else str(m.get("experiment_name") or exp_data.get("name", ""))),
        target=(s.target if s is not None else str(m.get("target") or "")),
        started_at=started,
        ended_at=ended,
        stopped_reason=stopped,
        estimates=_estimates(s, run.analysis),
        recommendation=s.recommendation if s is not None else None,
        search_path=_search_path(s, run.stages),
        stages=run.stages,
        seconds=run.seconds,
        guards=guards,
        manifest=m,
        warnings=[*(s.warnings if s is not None else []), *run.warnings],
        notes=notes,
        truth=_truth(s),
        partial=s is None,
        dashboard=run_dashboard(dash, started, ended),
        stage_dashboards=stage_dashboards(dash, run.stages),
        endpoints=run.endpoints,
        flows=run.flows,
        bottlenecks=[bottleneck_text(b) for b in (s.bottlenecks if s is not None else [])],
    )


def recommendation_rows(rec: dict[str, Any], prefix: str = "") -> list[tuple[str, str]]:
    """Flatten the recommendation (nested inputs included) into ``(key, text)`` rows."""
    rows: list[tuple[str, str]] = []
    for key, value in rec.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            rows.extend(recommendation_rows(value, f"{name}."))
        elif isinstance(value, list):
            rows.append((name, "; ".join(_fmt(v) for v in value)))
        else:
            rows.append((name, _fmt(value)))
    return rows


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, dict):
        return ", ".join(f"{k}={_fmt(x)}" for k, x in v.items())
    return "" if v is None else str(v)


def recommendation_headline(rec: dict[str, Any] | None) -> str:
    """One line: tasks and the constraint that set them (keys as ``capacity.size`` writes them)."""
    if not rec:
        return "no recommendation (SLO capacity not determined)"
    parts = []
    if rec.get("app_tasks") is not None:
        span = rec.get("app_tasks_range")
        parts.append(f"{rec['app_tasks']} app tasks" + (f" [{span[0]}-{span[1]}]" if span else ""))
    if rec.get("sidekiq_tasks") is not None:
        parts.append(f"{rec['sidekiq_tasks']} Sidekiq tasks")
    text = ", ".join(parts) or "see the table"
    if rec.get("binding_constraint"):
        text += f" (binding: {rec['binding_constraint']})"
    if rec.get("expected_utilisation") is not None:
        with contextlib.suppress(TypeError, ValueError):
            text += f"; {float(rec['expected_utilisation']):.0%} of SLO capacity used at peak"
    if rec.get("expected_cpu_utilisation") is not None:
        with contextlib.suppress(TypeError, ValueError):
            text += f", CPU {float(rec['expected_cpu_utilisation']):.0%}"
    ext = rec.get("extrapolation") or {}
    if ext.get("extrapolated"):
        largest = ext["largest_measured_tasks"]
        text += f"; extrapolated {float(ext['ratio']):.2g}x past the largest measured size ({largest})"
    over = [r for r in rec.get("limits") or [] if not r.get("ok")]
    if over:
        text += "; exceeds " + ", ".join(f"{r['name']} ({r['need']:g} > {r['limit']:g})" for r in over)
    return text


def chain_lines(chain: list[dict[str, Any]]) -> list[str]:
    """The chain as text, one step a line (the live summary, ``summary.md`` and ``capacity size``)."""
    out = []
    for s in chain:
        v = s.get("value")
        text = f"{v:.4g}" if isinstance(v, float) else ("-" if v is None else str(v))
        out.append(f"{s['step']}: {text}  <- {s['source']}")
    return out
