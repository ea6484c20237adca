"""The report's figures, as matplotlib ``Figure`` objects built from a run's tables.

Each function takes DataFrames in the results-folder layout (docs/results.md) and returns a figure;
the report turns them into inline PNGs and notebooks display them directly. Nothing here touches
files or a display: figures are built without pyplot (no global backend switch, so a notebook's
inline backend is left alone) and rendered to PNG by Agg.
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.patches import Patch

VERDICT_COLOURS: dict[str, str] = {
    "pass": "#2e7d32",
    "fail": "#c62828",
    "invalid: generator": "#757575",
    "invalid: worker lost": "#9e9e9e",
    "invalid: task drift": "#8d6e63",
    "invalid: auth": "#5d4037",
    "interrupted": "#ef6c00",
}
ESTIMATE_STYLES: dict[str, tuple[str, str]] = {
    "slo_capacity": ("#1565c0", "SLO capacity"),
    "saturation": ("#6a1b9a", "saturation"),
    "knee": ("#ef6c00", "knee"),
}
RESOURCE_PANELS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("CPU %", ("cpu",)),
    ("memory", ("mem",)),
    ("pool / backlog", ("pool", "backlog", "thread", "busy")),
    ("queue", ("queue", "job", "sidekiq")),
)
"""Server metrics (stage-table columns ``m_<name>``) are grouped into panels by name fragments."""


def colour(verdict: Any) -> str:
    return VERDICT_COLOURS.get(str(verdict), "#455a64")


def _figure(width: float = 7.5, height: float = 4.0) -> Figure:
    return Figure(figsize=(width, height), dpi=100, layout="constrained")


def _stages(stages: pd.DataFrame) -> pd.DataFrame:
    """Stages sorted by rate (for rate-axis plots), verdict column guaranteed."""
    if stages.empty or "target_rps" not in stages.columns:
        return pd.DataFrame(columns=["index", "target_rps", "offered_rps", "achieved_rps", "verdict"])
    frame = stages.copy()
    if "verdict" not in frame.columns:
        frame["verdict"] = "pass"
    return frame.sort_values("target_rps", kind="stable")


def _empty(ax: Any, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color="#616161")
    ax.set_xticks([])
    ax.set_yticks([])


def _mark_estimates(ax: Any, estimates: dict[str, Any] | None, names: tuple[str, ...]) -> None:
    """Vertical line at each estimate with its interval shaded (dashed when not reached)."""
    for name in names:
        est = (estimates or {}).get(name)
        if not est or est.get("value") is None:
            continue
        col, label = ESTIMATE_STYLES[name]
        reached = est.get("reached", True)
        ax.axvline(
            est["value"],
            color=col,
            ls="-" if reached else ":",
            lw=1.5,
            label=f"{label} {est['value']:.4g}" + ("" if reached else " (lower bound)"),
        )
        if est.get("lo") is not None and est.get("hi") is not None:
            ax.axvspan(est["lo"], est["hi"], color=col, alpha=0.12, lw=0)


def flag(frame: pd.DataFrame, column: str) -> np.ndarray:
    """A boolean stage-table column (``aborted_early``, ``percentiles_censored``...); all False when absent."""
    if column not in frame.columns:
        return np.zeros(len(frame), dtype=bool)
    values = frame[column]
    if values.dtype == object:
        return values.astype(str).str.strip().str.lower().isin(("true", "1")).to_numpy()
    return values.fillna(False).astype(bool).to_numpy()


def _mark_aborted(ax: Any, x: np.ndarray, y: np.ndarray, aborted: np.ndarray) -> None:
    """A black cross over each stage the runner aborted: its figures cover a few seconds only."""
    if aborted.any():
        ax.scatter(x[aborted], y[aborted], marker="x", color="#000000", s=60, zorder=4, label="aborted stage")


def _verdict_legend(ax: Any, verdicts: list[str]) -> None:
    handles = [Patch(color=colour(v), label=v) for v in dict.fromkeys(verdicts)]
    if handles:
        ax.legend(handles=handles, loc="upper left", fontsize=8, title="stage verdict", title_fontsize=8)


def goodput_figure(stages: pd.DataFrame, estimates: dict[str, Any] | None = None) -> Figure:
    """Goodput against offered rate, with the ideal line: saturation is where the two part."""
    fig = _figure()
    ax = fig.add_subplot()
    st = _stages(stages)
    if st.empty:
        _empty(ax, "no stage finished")
        return fig
    x = st["offered_rps"].to_numpy(dtype=float)
    top = float(np.nanmax([np.nanmax(x), np.nanmax(st["target_rps"].to_numpy(dtype=float))]))
    ax.plot([0, top], [0, top], color="#bdbdbd", ls="--", lw=1, label="goodput = offered")
    ax.plot(x, st["achieved_rps"].to_numpy(dtype=float), color="#424242", lw=1, alpha=0.6)
    ax.scatter(x, st["achieved_rps"], c=[colour(v) for v in st["verdict"]], s=36, zorder=3)
    _mark_aborted(ax, x, st["achieved_rps"].to_numpy(dtype=float), flag(st, "aborted_early"))
    _mark_estimates(ax, estimates, ("saturation", "slo_capacity"))
    ax.set_xlabel("offered rate (req/s)")
    ax.set_ylabel("goodput (successful req/s)")
    ax.set_title("Goodput vs offered rate")
    ax.legend(loc="lower right", fontsize=8)
    return fig


def latency_figure(
    stages: pd.DataFrame, estimates: dict[str, Any] | None = None, slo_p95_ms: float | None = None
) -> Figure:
    """p50/p95/p99 per stage against the target rate, with the SLO and the knee."""
    fig = _figure()
    ax = fig.add_subplot()
    st = _stages(stages)
    styles = (("p50_ms", "-", "#90a4ae"), ("p95_ms", "-", "#263238"), ("p99_ms", "--", "#546e7a"))
    cols = [(c, s, k) for c, s, k in styles if c in st.columns]
    if st.empty or not cols:
        _empty(ax, "no latency data")
        return fig
    x = st["target_rps"].to_numpy(dtype=float)
    censored = flag(st, "percentiles_censored")
    for col, style, col_colour in cols:
        y = pd.to_numeric(st[col], errors="coerce").to_numpy(dtype=float)
        ax.plot(x, y, style, color=col_colour, marker="o", ms=4, label=col.removesuffix("_ms"))
        if censored.any():  # waits cut short by an abort: the true percentile lies above the point
            ax.scatter(
                x[censored],
                y[censored] * 1.12,
                marker="^",
                color=col_colour,
                s=40,
                zorder=4,
                label="censored: a lower bound (true value above)" if col == cols[0][0] else None,
            )
    if "p95_ms" in st.columns:
        _mark_aborted(
            ax, x, pd.to_numeric(st["p95_ms"], errors="coerce").to_numpy(dtype=float), flag(st, "aborted_early")
        )
    if slo_p95_ms:
        ax.axhline(slo_p95_ms, color="#c62828", lw=1, ls="-.", label=f"p95 SLO {slo_p95_ms:g} ms")
    _mark_estimates(ax, estimates, ("knee", "slo_capacity"))
    ax.set_yscale("log")
    ax.set_xlabel("target rate (req/s)")
    ax.set_ylabel("latency (ms, log scale)")
    ax.set_title("Latency percentiles vs rate")
    ax.legend(fontsize=8, loc="upper left")
    return fig


def endpoint_figure(endpoints: pd.DataFrame, stages: pd.DataFrame, slo_p95_ms: float | None = None) -> Figure:
    """p95 per endpoint against the stage's target rate: which endpoint breaks first."""
    fig = _figure()
    ax = fig.add_subplot()
    if endpoints.empty or "endpoint" not in endpoints.columns or "p95_ms" not in endpoints.columns:
        _empty(ax, "no per-endpoint results in this run")
        return fig
    rates = dict(
        zip(stages.get("index", pd.Series(dtype=int)), stages.get("target_rps", pd.Series(dtype=float)), strict=False)
    )
    for name, grp in endpoints.groupby("endpoint", sort=True):
        grp = grp.assign(rate=grp["stage"].map(rates)).dropna(subset=["rate"]).sort_values("rate")
        ax.plot(grp["rate"], pd.to_numeric(grp["p95_ms"], errors="coerce"), marker="o", ms=4, label=str(name))
    if slo_p95_ms:
        ax.axhline(slo_p95_ms, color="#c62828", lw=1, ls="-.", label=f"p95 SLO {slo_p95_ms:g} ms")
    ax.set_yscale("log")
    ax.set_xlabel("target rate (req/s, whole workload)")
    ax.set_ylabel("p95 latency (ms, log scale)")
    ax.set_title("p95 per endpoint vs rate")
    ax.legend(fontsize=7, loc="upper left")
    return fig


def resource_columns(stages: pd.DataFrame) -> dict[str, list[str]]:
    """Panel title -> the ``m_*`` columns (with data) that belong in it."""
    metric_cols = [
        c for c in stages.columns if c.startswith("m_") and pd.to_numeric(stages[c], errors="coerce").notna().any()
    ]
    panels: dict[str, list[str]] = {}
    for title, keys in RESOURCE_PANELS:
        panels[title] = [
            c for c in metric_cols if any(k in c.lower() for k in keys) and not any(c in v for v in panels.values())
        ]
    if (
        "generator_cpu_pct" in stages.columns
        and pd.to_numeric(stages["generator_cpu_pct"], errors="coerce").notna().any()
    ):
        panels["CPU %"].append("generator_cpu_pct")
    return panels


def resources_figure(stages: pd.DataFrame, guards: dict[str, Any] | None = None) -> Figure:
    """Server CPU, memory, pool and queue aggregates per stage against the rate (2 x 2 panels)."""
    fig = _figure(9.0, 6.0)
    axes = fig.subplots(2, 2, sharex=True)
    st = _stages(stages)
    panels = resource_columns(st) if not st.empty else {t: [] for t, _ in RESOURCE_PANELS}
    limits = {
        "CPU %": (guards or {}).get("max_cpu_pct"),
        "queue": None,
        "memory": (guards or {}).get("max_mem_pct"),
    }
    for ax, (title, cols) in zip(axes.flat, panels.items(), strict=False):
        ax.set_title(title, fontsize=10)
        if not cols:
            _empty(ax, "no data (metric not collected)")
            continue
        for col in cols:
            ax.plot(
                st["target_rps"],
                pd.to_numeric(st[col], errors="coerce"),
                marker="o",
                ms=3,
                label=col.removeprefix("m_"),
            )
        limit = limits.get(title)
        if limit and any(c.endswith("pct") for c in cols):
            ax.axhline(float(limit), color="#c62828", lw=1, ls="-.", label=f"guard {float(limit):g}")
        ax.legend(fontsize=7)
    for ax in axes[1]:
        ax.set_xlabel("target rate (req/s)")
    fig.suptitle("Server resources vs rate")
    return fig


def timeline_figure(seconds: pd.DataFrame, stages: pd.DataFrame) -> Figure:
    """Every second of the run: offered and goodput per second, coloured by the stage's verdict."""
    fig = _figure(9.0, 4.5)
    ax = fig.add_subplot()
    if seconds.empty or "t" not in seconds.columns:
        _empty(ax, "no per-second samples")
        return fig
    verdicts = dict(
        zip(
            stages.get("index", pd.Series(dtype=int)),
            stages.get("verdict", pd.Series(dtype=str)),
            strict=False,
        )
    )
    sec = seconds.sort_values("t")
    t0 = float(sec["t"].min())
    rel = sec["t"].to_numpy(dtype=float) - t0
    cols = [colour(verdicts.get(s)) for s in sec["stage"]]
    warm = (sec["phase"] == "warmup").to_numpy() if "phase" in sec.columns else np.zeros(len(sec), bool)
    # NaN rows between stages break the lines, so the pauses between stages are not drawn as ramps
    gap = np.r_[np.diff(rel) > 1.5, False]

    def broken(y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        idx = np.flatnonzero(gap) + 1
        return np.insert(rel, idx, np.nan), np.insert(y.astype(float), idx, np.nan)

    ax.plot(
        *broken(sec["target_rps"].to_numpy()),
        color="#9e9e9e",
        lw=1,
        drawstyle="steps-post",
        label="target rate",
    )
    ax.plot(*broken(sec["offered"].to_numpy()), color="#424242", lw=0.6, alpha=0.5, label="offered / s")
    c_arr = np.array(cols, dtype=object)
    ax.scatter(rel[~warm], sec["ok"].to_numpy()[~warm], c=list(c_arr[~warm]), s=10, zorder=3, label="goodput / s")
    if warm.any():
        ax.scatter(
            rel[warm],
            sec["ok"].to_numpy()[warm],
            facecolors="none",
            edgecolors=list(c_arr[warm]),
            s=10,
            zorder=3,
            label="goodput / s (warm-up)",
        )
    for stage, grp in sec.groupby("stage"):
        lo, hi = float(grp["t"].min()) - t0, float(grp["t"].max()) - t0 + 1
        ax.axvspan(lo, hi, color=colour(verdicts.get(stage)), alpha=0.07, lw=0)
        ax.text(
            (lo + hi) / 2,
            1.0,
            str(stage),
            transform=ax.get_xaxis_transform(),
            ha="center",
            va="bottom",
            fontsize=7,
        )
    if "p95_ms" in sec.columns and pd.to_numeric(sec["p95_ms"], errors="coerce").notna().any():
        ax2 = ax.twinx()
        ax2.plot(
            *broken(pd.to_numeric(sec["p95_ms"], errors="coerce").to_numpy()),
            color="#1565c0",
            lw=0.8,
            alpha=0.7,
        )
        ax2.set_ylabel("p95 per second (ms)", color="#1565c0")
        ax2.set_yscale("log")
    ax.set_xlabel("seconds since the run started (stage numbers on top)")
    ax.set_ylabel("requests per second")
    ax.legend(fontsize=7, loc="upper left")
    ax.set_title("Stage timeline (background and points coloured by stage verdict)", pad=14)
    return fig


def search_path_figure(path: list[dict[str, Any]]) -> Figure:
    """The rates probed, in order, coloured by verdict and labelled with why each was chosen."""
    fig = _figure(7.5, 3.8)
    ax = fig.add_subplot()
    if not path:
        _empty(ax, "no stage probed")
        return fig
    order = list(range(len(path)))
    rates = [float(p.get("rate") or 0.0) for p in path]
    ax.plot(order, rates, color="#9e9e9e", lw=1)
    ax.scatter(order, rates, c=[colour(p.get("verdict")) for p in path], s=50, zorder=3)
    for i, p in enumerate(path):
        ax.annotate(
            str(p.get("probe", "")),
            (i, rates[i]),
            textcoords="offset points",
            xytext=(0, 7),
            ha="center",
            fontsize=7,
        )
    _verdict_legend(ax, [str(p.get("verdict")) for p in path])
    ax.set_xticks(order)
    ax.set_xlabel("stage (in the order probed)")
    ax.set_ylabel("target rate (req/s)")
    ax.set_title("Search path")
    return fig


def png_bytes(fig: Figure) -> bytes:
    """The figure as PNG bytes (what the report inlines as a data URI)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()
