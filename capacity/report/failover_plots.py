"""A failover run's report: the load around the loss, the rate each surviving task carried against
the per-task capacity the search measured, and the before / during / after table (``failover.json``).

Drawn only for run folders that hold a ``failover.json``; the search report's sections follow it.
"""

from __future__ import annotations

import base64
import html
import json
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from capacity.store import LoadedRun

PERIODS = ("before", "during", "after")
TABLE_ROWS: tuple[tuple[str, str, str], ...] = (
    ("goodput_rps", "goodput req/s", "{:.1f}"),
    ("offered_rps", "offered req/s", "{:.1f}"),
    ("p95_ms", "p95 ms", "{:.0f}"),
    ("p99_ms", "p99 ms", "{:.0f}"),
    ("error_ratio", "error ratio", "{:.2%}"),
    ("dropped", "dropped", "{:.0f}"),
    ("cpu_pct_max_task", "CPU % (busiest task)", "{:.0f}"),
    ("pool_free_min", "free pool (lowest)", "{:.1f}"),
    ("queue_size_max", "job queue (max)", "{:.0f}"),
)


def read_failover(run: LoadedRun) -> dict[str, Any] | None:
    path = run.path / "failover.json"
    if not path.is_file():
        return None
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def serving_at(rel: np.ndarray, record: dict[str, Any]) -> np.ndarray:
    """Serving app tasks at each second (seconds after the loss): all before it, the watch's count after."""
    before = int(record.get("surviving_tasks") or 0) + len(record.get("lost_tasks") or [])
    out = np.full(rel.shape, float(before or np.nan))
    if record.get("lost_at") is None:
        return out
    out[rel >= 0] = float(record.get("surviving_tasks") or np.nan)
    for point in record.get("timeline") or []:
        out[rel >= float(point["at_s"])] = float(point["serving"])
    return out


_PER_SECOND = (
    ("load", "offered", "#424242", 0.8, "offered / s"),
    ("load", "ok", "#2e7d32", 0.8, "goodput / s"),
    ("per", "ok", "#1565c0", 0.9, "goodput per serving task"),
    ("per", "offered", "#424242", 0.8, "offered per serving task"),
)
"""The per-second lines: (panel, column, colour, width, label); the ``per`` panel divides by the serving tasks."""
_PER_TASK_LINES = (
    ("capacity_rps_per_task", "#c62828", "--", "per-task SLO capacity measured"),
    ("sandbox_formula_rps_per_task", "#9e9e9e", ":", "sandbox pool capacity per task, formula"),
)
"""The per-task capacity lines of the record's ``per_task``: (key, colour, style, label)."""


def failover_figure(seconds: pd.DataFrame, record: dict[str, Any]) -> Figure:
    """Two panels on seconds after the loss: offered and goodput; goodput per serving task vs capacity."""
    fig = Figure(figsize=(9.0, 6.0), dpi=100, layout="constrained")
    load, per = fig.subplots(2, 1, sharex=True)
    if seconds.empty or "t" not in seconds.columns:
        load.text(0.5, 0.5, "no per-second samples", ha="center", transform=load.transAxes)
        return fig
    sec = seconds.sort_values("t")
    ref = record.get("lost_at") or float(sec["t"].min())
    rel = sec["t"].to_numpy(dtype=float) - float(ref)
    serving = serving_at(rel, record)
    for panel, column, colour, width, label in _PER_SECOND:
        values = sec[column].to_numpy(dtype=float)
        ax = load if panel == "load" else per
        ax.plot(
            rel + 0.5,
            values if ax is load else values / serving,
            color=colour,
            lw=width,
            drawstyle="steps-mid",
            label=label,
        )
    load.set_ylabel("requests per second")
    load.set_ylim(bottom=0)
    pt = record.get("per_task") or {}
    for key, colour, style, label in _PER_TASK_LINES:
        if pt.get(key) is not None:
            per.axhline(pt[key], color=colour, ls=style, lw=1.2, label=f"{label} ({pt[key]:.1f})")
    per.set_ylabel("req/s per task")
    per.set_ylim(bottom=0)
    per.set_xlabel("seconds after the loss")
    for ax in (load, per):
        if record.get("lost_at") is not None:
            ax.axvline(0, color="#c62828", lw=1)
        if record.get("replaced_after_s") is not None:
            ax.axvline(float(record["replaced_after_s"]), color="#2e7d32", lw=1, ls="--")
        ax.legend(fontsize=7, loc="best")
    return fig


def _cell(v: Any, fmt: str) -> str:
    return "-" if v is None else html.escape(fmt.format(float(v)))


def period_table(record: dict[str, Any]) -> str:
    detail = record.get("period_detail") or {}
    head = "".join(f"<th>{p}</th>" for p in ("", *PERIODS))
    rows = "".join(
        f"<tr><th>{label}</th>"
        + "".join(f"<td>{_cell((detail.get(p) or {}).get(k), fmt)}</td>" for p in PERIODS)
        + "</tr>"
        for k, label, fmt in TABLE_ROWS
    )
    fb = record.get("first_breach")
    breach = (
        f"first breach: <b>{html.escape(str(fb['code']))}</b> at {fb['at_s_after_loss']} s after the loss"
        if fb
        else "no guard broke"
    )
    back = record.get("replaced_after_s")
    pt = record.get("per_task") or {}
    carried = pt.get("offered_rps_per_task")
    return (
        f"<p>failover <b>{html.escape(str(record.get('verdict')))}</b>: lost {len(record.get('lost_tasks') or [])} "
        f"app task(s), {record.get('surviving_tasks')} left; back at the desired count after "
        f"{'never (deadline)' if back is None else f'{back:.1f} s'}; {breach}.</p>"
        + (f"<p>each surviving task carried {carried:.1f} req/s during the loss.</p>" if carried is not None else "")
        + f"<table><tr>{head}</tr>{rows}</table>"
    )


def failover_report(run: LoadedRun) -> tuple[dict[str, bytes], list[tuple[str, str, str]]]:
    """A failover run's figure (PNG by name) and its report section; nothing for other runs."""
    record = read_failover(run)
    if record is None:
        return {}, []
    from capacity.report.plots import png_bytes

    png = png_bytes(failover_figure(run.seconds, record))
    data = base64.b64encode(png).decode("ascii")
    img = f'<figure><img alt="failover" data-plot="failover" src="data:image/png;base64,{data}"></figure>'
    return {"failover": png}, [("failover", "Failover: losing a task at peak", period_table(record) + img)]
