"""A scaling series drawn: capacity against app tasks, the fitted curve, the line, and production's point.

``scaling_figure`` works from ``scaling.json`` (a plain dict, so notebooks can draw a loaded series);
``write_scaling_report`` puts ``scaling.png`` and a small ``scaling.html`` (table, figure,
recommendation) beside it in the series folder.
"""

from __future__ import annotations

import base64
import html
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from capacity.report.plots import png_bytes
from capacity.store.atomic import atomic_write_bytes, atomic_write_text


def _usl(n: np.ndarray, fit: dict[str, Any]) -> np.ndarray:
    s, k, lam = float(fit["sigma"]), float(fit["kappa"]), float(fit["lambda"])
    return lam * n / (1 + s * (n - 1) + k * n * (n - 1))


def scaling_figure(data: dict[str, Any]) -> Figure:
    """Measured capacity per size (with intervals), the fit, the linear extrapolation and production's point."""
    fig = Figure(figsize=(7.5, 4.2), dpi=100, layout="constrained")
    ax = fig.add_subplot(1, 1, 1)
    sizes = [s for s in data.get("sizes", []) if _x(s)[0] is not None]
    fit, rec = data.get("fit"), data.get("recommendation") or {}
    top = max([s["app_tasks"] for s in sizes] + [rec.get("app_tasks_curve") or 0, rec.get("app_tasks_linear") or 0, 1])
    grid = np.linspace(1, max(top * 1.15, 2), 200)
    if fit:
        ax.plot(grid, _usl(grid, fit), color="#1565c0", label=f"fit ({fit['model']})")
        peak = fit.get("peak_tasks")
        if peak and peak <= grid[-1]:
            ax.axvline(peak, color="#1565c0", linestyle=":", linewidth=1, label=f"peak {peak:.1f} tasks")
    if rec.get("per_task_rps_linear"):
        ax.plot(grid, grid * rec["per_task_rps_linear"], color="#9e9e9e", linestyle="--", label="linear")
    truth = (data.get("truth") or {}).get("usl")
    if truth and (truth.get("sigma") or truth.get("kappa")):
        ax.plot(grid, _usl(grid, truth), color="#2e7d32", linewidth=1, alpha=0.7, label="sandbox truth")
    for s in sizes:
        y_or_none, (lo, hi) = _x(s)
        y = float(y_or_none or 0.0)
        err = [[y - lo], [hi - y]] if lo is not None and hi is not None else None
        style = "o" if s.get("capacity_rps", s.get("saturation_rps")) is not None and not s.get("drifted") else "x"
        ax.errorbar([s["app_tasks"]], [y], yerr=err, fmt=style, color="#6a1b9a", capsize=4)
    if rec.get("need_rps"):
        ax.axhline(rec["need_rps"], color="#c62828", linewidth=1, linestyle="-.", label="production need")
        if rec.get("app_tasks_curve"):
            y_answer = float(rec.get("curve_rps_at_answer") or rec["need_rps"])
            label = f"production: {rec['app_tasks_curve']} tasks (curve)"
            ax.plot([rec["app_tasks_curve"]], [y_answer], "*", ms=14, color="#c62828", label=label)
    ax.set_xlabel("app tasks")
    ax.set_ylabel("capacity (req/s)")
    ax.set_title("capacity against app tasks")
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8, loc="best")
    return fig


def _x(s: dict[str, Any]) -> tuple[float | None, list[float | None]]:
    """X(N) as fitted: the size's SLO capacity (a series written before it: the saturation)."""
    if "capacity_rps" in s:
        return s["capacity_rps"], list(s.get("capacity_interval") or [None, None])
    return s.get("saturation_rps"), list(s.get("interval") or [None, None])


def _row(s: dict[str, Any]) -> str:
    x, (lo, hi) = _x(s)
    iv = f"[{lo:.1f}, {hi:.1f}]" if lo is not None and hi is not None else "-"
    cap = f"{x:.1f}" if x is not None else "-"
    sat = f"{s['saturation_rps']:.1f}" if s.get("saturation_rps") is not None else "-"
    note = "drifted" if s.get("drifted") else ("" if x is not None else "not reached")
    cells = [str(s["app_tasks"]), cap, iv, sat, html.escape(str(s.get("run_id", ""))), note]
    return "<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>"


def _chain_list(chain: list[dict[str, Any]]) -> str:
    from capacity.report.content import chain_lines

    return "<ol>" + "".join(f"<li>{html.escape(line)}</li>" for line in chain_lines(chain)) + "</ol>" if chain else ""


def write_scaling_report(series_dir: Path, data: dict[str, Any]) -> Path:
    """``scaling.png`` and ``scaling.html`` in the series folder; returns the HTML's path."""
    png = png_bytes(scaling_figure(data))
    atomic_write_bytes(series_dir / "scaling.png", png)
    rec, fit = data.get("recommendation") or {}, data.get("fit") or {}
    fit_line = (
        f"{fit.get('model')}: sigma {fit.get('sigma', 0):.4g}, kappa {fit.get('kappa', 0):.4g}, "
        f"lambda {fit.get('lambda', 0):.4g} req/s, peak "
        + (f"{fit['peak_tasks']:.2f} tasks" if fit.get("peak_tasks") else "none")
        if fit
        else "no fit"
    )
    span = rec.get("app_tasks_range")
    rec_line = (
        f"{rec.get('app_tasks')} app tasks {span or ''}; curve: {rec.get('app_tasks_curve') or 'refused'}; "
        f"linear: {rec.get('app_tasks_linear')}; "
        f"binding: {rec.get('binding')}" + (f" ({rec['refused']})" if rec.get("refused") else "")
        if rec
        else "no recommendation"
    )
    body = (
        f"<h1>Scaling series {html.escape(str(data.get('series_id', '')))}</h1>"
        f"<p>experiment {html.escape(str(data.get('experiment', '')))}; stopped: "
        f"{html.escape(str(data.get('stopped_reason', '')))}</p>"
        "<table><tr><th>app tasks</th><th>SLO capacity req/s</th><th>interval</th><th>saturation req/s</th>"
        "<th>run</th><th></th></tr>" + "".join(_row(s) for s in data.get("sizes", [])) + "</table>"
        f"<p>fit: {html.escape(fit_line)}</p>"
        + (f"<p>fit check: {html.escape(str(data['fit_check']))}</p>" if data.get("fit_check") else "")
        + f"<p>production: {html.escape(rec_line)}</p>"
        + _shared_line(data.get("shared_resource"))
        + _chain_list(rec.get("chain") or [])
        + f'<img alt="capacity against app tasks" src="data:image/png;base64,{base64.b64encode(png).decode()}">'
        + "".join(f"<p>warning: {html.escape(w)}</p>" for w in data.get("warnings", []))
    )
    path = series_dir / "scaling.html"
    atomic_write_text(path, f"<!doctype html><meta charset='utf-8'><title>capacity scale</title>{body}\n")
    return path


def _shared_line(shared: Any) -> str:
    """The shared resource whose figures rose with the task count, when the series found one."""
    if not isinstance(shared, dict):
        return ""
    what, why = (html.escape(str(shared.get(k))) for k in ("resource", "evidence"))
    return f"<p><b>shared resource:</b> {what}: {why}</p>"
