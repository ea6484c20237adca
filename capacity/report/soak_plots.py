"""A soak's (or a burst shape's) report: offered, goodput and latency over time against the planned
shape, memory per task and the job queue over time, and the drift table (from ``soak.json``).

Drawn only for run folders that hold a ``soak.json``; the search report's sections follow it.
"""

from __future__ import annotations

import base64
import html
import json
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from capacity.analyze.drift import LABELS, MIB
from capacity.store import LoadedRun


def read_soak(run: LoadedRun) -> dict[str, Any] | None:
    path = run.path / "soak.json"
    if not path.is_file():
        return None
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def planned_rate(seconds: pd.DataFrame, record: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """The planned rate as (t, req/s) points on the series' clock: each segment's shape from its first second."""
    starts = seconds.groupby("stage")["t"].min() if not seconds.empty else pd.Series(dtype=float)
    ts: list[float] = []
    rs: list[float] = []
    for seg in (record.get("plan") or {}).get("segments") or []:
        if seg["index"] not in starts.index:
            continue
        t0 = float(starts[seg["index"]])
        ts += [t0 + float(t) for t, _ in seg["points"]] + [np.nan]
        rs += [float(r) for _, r in seg["points"]] + [np.nan]
    return np.array(ts), np.array(rs)


def soak_figure(seconds: pd.DataFrame, metrics: pd.DataFrame, record: dict[str, Any]) -> Figure:
    """Three panels over the soak's time: load (planned, offered, goodput), latency, memory and queue."""
    fig = Figure(figsize=(9.0, 8.0), dpi=100, layout="constrained")
    load, lat, res = fig.subplots(3, 1, sharex=True)
    if seconds.empty or "t" not in seconds.columns:
        load.text(0.5, 0.5, "no per-second samples", ha="center", transform=load.transAxes)
        return fig
    sec = seconds.sort_values("t")
    t0 = float(sec["t"].min())
    rel = sec["t"].to_numpy(dtype=float) - t0
    pt, pr = planned_rate(sec, record)
    load.plot(pt - t0, pr, color="#9e9e9e", lw=1.5, label="planned rate (shape)")
    load.plot(rel + 0.5, sec["offered"], color="#424242", lw=0.8, drawstyle="steps-mid", label="offered / s")
    load.plot(rel + 0.5, sec["ok"], color="#2e7d32", lw=0.8, alpha=0.8, drawstyle="steps-mid", label="goodput / s")
    load.set_ylabel("requests per second")
    load.set_ylim(bottom=0)
    load.legend(fontsize=7, loc="best")
    load.set_title("Offered and goodput per second against the planned shape")
    for q, colour in (("p50_ms", "#90caf9"), ("p95_ms", "#1565c0"), ("p99_ms", "#c62828")):
        if q in sec.columns:
            lat.plot(rel + 0.5, pd.to_numeric(sec[q], errors="coerce"), color=colour, lw=0.8, label=q[:3])
    lat.set_ylabel("latency per second (ms)")
    lat.legend(fontsize=7, loc="best")
    _resources(res, metrics, t0)
    res.set_xlabel("seconds since the soak started")
    return fig


def _resources(ax: Any, metrics: pd.DataFrame, t0: float) -> None:
    """Memory of each app task (MiB, left) and the job queue (right)."""
    if metrics.empty or "metric" not in metrics.columns:
        ax.text(0.5, 0.5, "no server metrics", ha="center", transform=ax.transAxes)
        return
    mem = metrics[metrics["metric"] == "mem_usage"]
    for i, (_, grp) in enumerate(mem.sort_values("t").groupby("group")):
        ax.plot(grp["t"] - t0, grp["value"] / MIB, lw=0.9, label=f"app task {i + 1} memory")
    ax.set_ylabel("memory (MiB)")
    queue = metrics[metrics["metric"] == "queue_size"]
    if not queue.empty:
        ax2 = ax.twinx()
        q = queue.groupby("t")["value"].sum()
        ax2.plot(q.index - t0, q.to_numpy(), color="#6a1b9a", lw=0.9, label="job queue")
        ax2.set_ylabel("jobs queued", color="#6a1b9a")
    if not mem.empty:
        ax.legend(fontsize=7, loc="upper left")
    ax.set_title("Memory per app task and job queue")


def _g(v: Any) -> str:
    return "-" if v is None else f"{float(v):.4g}"


def drift_table(record: dict[str, Any]) -> str:
    """The drift table and the verdict, as HTML."""
    ttl, thresholds = record.get("time_to_limit_h") or {}, record.get("thresholds") or {}
    rows = []
    for name, d in (record.get("drift") or {}).items():
        label, unit, limit = LABELS[name]
        hours = ttl.get(name)
        rows.append(
            f"<tr><th>{html.escape(label)}</th><td>{_g(d['value'])} {unit}</td>"
            f"<td>{_interval(d)}</td><td>{d['verdict']}</td><td>{_g(thresholds.get(name))}</td>"
            f"<td>{'-' if hours is None else f'{hours:.2f} h to {html.escape(limit)}'}</td></tr>"
        )
    per_k = (record.get("detail") or {}).get("mem_mib_per_1000_requests") or {}
    notes = []
    if per_k:
        notes.append(f"memory per 1000 requests per task: {_g(per_k.get('value'))} MiB {_interval(per_k)}")
    sb = record.get("sandbox_set") or {}
    if sb.get("mem_growth_kb"):
        notes.append(f"sandbox set: {_g(sb['mem_mib_per_1000_requests'])} MiB per 1000 requests")
    notes += [f"threshold crossed: {r}" for r in record.get("reasons") or []]
    head = "".join(f"<th>{h}</th>" for h in ("drift", "slope", "interval", "verdict", "threshold", "time to limit"))
    items = "".join(f"<li>{html.escape(n)}</li>" for n in notes)
    why = (record.get("plan") or {}).get("why")
    return (
        f"<p>soak <b>{html.escape(str(record.get('verdict')))}</b> at {html.escape(str(why))}; "
        f"stopped: {html.escape(str(record.get('stopped_reason')))}</p>"
        f"<table><tr>{head}</tr>{''.join(rows)}</table><ul>{items}</ul>"
    )


def _interval(d: dict[str, Any]) -> str:
    return f"[{_g(d.get('lo'))}, {_g(d.get('hi'))}]"


def soak_report(run: LoadedRun) -> tuple[dict[str, bytes], list[tuple[str, str, str]]]:
    """A soak run's figure (PNG by name) and its report section (id, title, HTML); nothing for a search."""
    record = read_soak(run)
    if record is None:
        return {}, []
    from capacity.report.plots import png_bytes

    png = png_bytes(soak_figure(run.seconds, run.metrics, record))
    data = base64.b64encode(png).decode("ascii")
    img = f'<figure><img alt="soak over time" data-plot="soak" src="data:image/png;base64,{data}"></figure>'
    return {"soak": png}, [("soak", "Soak: drift over time", drift_table(record) + img)]
