"""Bootstrap intervals: resample the measured seconds within each stage, recompute the estimate.

Per-second samples carry goodput, offered load and latency percentiles but not server metrics, so a
replicate scales each stage's figures by (resampled mean / original mean) of its seconds: the point
estimate stays the stage table's, and the spread comes from second-to-second variation. Without
per-second samples we fall back to resampling whole stages (a coarser, stated, interval).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from capacity.analyze.table import StageTable

_SCALED = {
    "offered": ("rate", "offered_rps"),
    "ok": ("achieved_rps",),
    "p50_ms": ("p50_ms",),
    "p95_ms": ("p95_ms",),
    "p99_ms": ("p99_ms",),
}


class SecondResampler:
    """Draws replicate stage tables from the measure-phase seconds of each stage."""

    def __init__(self, table: StageTable, seconds: pd.DataFrame | None) -> None:
        self.table = table
        self.groups: dict[int, dict[str, np.ndarray]] = {}
        self.means: dict[int, dict[str, float]] = {}  # each stage's per-column mean: the replicates' divisor
        if seconds is None or seconds.empty or "stage" not in seconds.columns or "index" not in table.frame:
            return
        sec = seconds
        if "phase" in sec.columns:
            sec = sec[sec["phase"] == "measure"]
        for idx, grp in sec.groupby("stage"):
            key = int(pd.to_numeric(idx))
            if len(grp) < 2:
                continue
            cols = {}
            for k in _SCALED:
                if k in grp.columns:
                    values = pd.to_numeric(grp[k], errors="coerce").to_numpy(dtype=float)
                    if np.isfinite(values).sum() >= 2 and np.nanmean(values) > 0:
                        cols[k] = values
            if cols:
                self.groups[key] = cols
                self.means[key] = {k: float(np.nanmean(v)) for k, v in cols.items()}

    @property
    def by_seconds(self) -> bool:
        return bool(self.groups)

    def draw(self, rng: np.random.Generator) -> StageTable:
        frame = self.table.frame
        if not self.by_seconds:
            pick = np.unique(rng.integers(0, len(frame), len(frame)))
            return StageTable(frame=frame.iloc[pick].reset_index(drop=True))
        factors = {key: np.ones(len(frame)) for key in _SCALED}
        for row, stage_index in enumerate(frame["index"].to_numpy()):
            g = self.groups.get(int(stage_index)) if pd.notna(stage_index) else None
            if not g:
                continue
            means = self.means[int(stage_index)]
            n = len(next(iter(g.values())))
            take = rng.integers(0, n, n)  # the same seconds for every column: offered and ok stay paired
            for key, values in g.items():
                with np.errstate(invalid="ignore"):
                    f = np.nanmean(values[take]) / means[key]
                factors[key][row] = f if np.isfinite(f) else 1.0
        out = frame.copy()
        for key, cols in _SCALED.items():
            for col in cols:
                if col in out.columns:
                    out[col] = out[col].to_numpy(dtype=float) * factors[key]
        return StageTable(frame=out)

    def replicates(self, n_boot: int, seed: int) -> list[StageTable]:
        """``n_boot`` replicate tables, drawn once and shared by every estimate (a joint bootstrap)."""
        rng = np.random.default_rng(seed)
        return [self.draw(rng) for _ in range(max(0, n_boot))]


def bootstrap_interval(
    stat: Callable[[StageTable], float | None],
    replicates: list[StageTable],
    *,
    level: float = 0.95,
) -> tuple[float | None, float | None, int]:
    """Percentile interval of ``stat`` over replicates; also the number of replicates that gave a value.

    None when fewer than a quarter of the replicates (or 10) gave a value: no interval beats a wrong one.
    """
    n_boot = len(replicates)
    if n_boot == 0:
        return None, None, 0
    values = []
    for rep in replicates:
        try:
            v = stat(rep)
        except (ValueError, ZeroDivisionError, FloatingPointError, np.linalg.LinAlgError):
            v = None
        if v is not None and np.isfinite(v):
            values.append(float(v))
    if len(values) < max(10, n_boot // 4):
        return None, None, len(values)
    a = (1 - level) / 2
    return float(np.quantile(values, a)), float(np.quantile(values, 1 - a)), len(values)
