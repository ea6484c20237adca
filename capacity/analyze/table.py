"""The stage table as the analysis reads it: validated columns, one rate per stage, valid stages only.

Input comes from the runner (``stages.parquet``) or from a user's CSV, so names are normalised here
once: resource columns may be given with or without the ``m_`` prefix, and the rate is
``offered_rps`` (what the target actually received) falling back to ``target_rps``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from capacity.core.errors import CapacityError
from capacity.core.outcomes import Validity, Verdict

LATENCY_COLUMNS = ("p50_ms", "p95_ms", "p99_ms")
RESOURCE_COLUMNS = (
    "cpu_pct",
    "cpu_pct_max",
    "mem_pct",
    "mem_pct_max",
    "mem_mb_max",
    "pool_busy_pct",
    "backlog_max",
    "queue_size_max",
    "queue_growth_per_s",
    "queue_latency_s",
    "queue_latency_s_max",
    "jobs_per_s",
    "sidekiq_cpu_pct",
)
STAGE_COLUMNS_HELP = (
    "a stage table needs 'target_rps' or 'offered_rps', and 'achieved_rps'; optional: p50_ms, p95_ms, "
    "p99_ms, error_ratio, verdict, and resource columns such as cpu_pct, mem_pct, queue_latency_s"
)


def is_valid_verdict(verdict: object) -> bool:
    """Stages judged 'invalid: ...' or 'interrupted' never set capacity and are never a knee.

    A stage table may come from a user's CSV: a verdict this tool does not write is read by its validity
    word (``invalid: <anything>``), the one place a verdict is parsed, because it is outside input."""
    v = str(verdict or "").strip().lower()
    try:
        return Verdict(v).is_valid
    except ValueError:
        return v.partition(":")[0].strip() not in (Validity.INVALID, Validity.INTERRUPTED)


@dataclass
class StageTable:
    """Valid stages sorted by rate, with a ``rate`` column; ``notes`` say what was dropped and why."""

    frame: pd.DataFrame
    notes: list[str] = field(default_factory=list)
    _columns: dict[str, np.ndarray | None] = field(default_factory=dict, repr=False, compare=False)
    """``column`` results, read once: the bootstrap asks each replicate for the same columns many times."""

    @property
    def rate(self) -> np.ndarray:
        return self.frame["rate"].to_numpy(dtype=float)

    @property
    def achieved(self) -> np.ndarray:
        return self.frame["achieved_rps"].to_numpy(dtype=float)

    def flag(self, name: str) -> np.ndarray:
        """A yes/no column (``percentiles_censored``, ``aborted_early``) as booleans; all False when absent."""
        if name not in self.frame.columns:
            return np.zeros(len(self.frame), dtype=bool)
        values = self.frame[name]
        if values.dtype == object:  # from a CSV: "True"/"False"
            return values.astype(str).str.strip().str.lower().isin(("true", "1", "1.0")).to_numpy()
        return values.fillna(False).astype(bool).to_numpy()

    def column(self, name: str) -> np.ndarray | None:
        """A numeric column (latency or ``m_`` resource), or None when absent or all NaN."""
        if name in self._columns:
            return self._columns[name]
        col = name if name in self.frame.columns else f"m_{name}"
        values: np.ndarray | None = None
        if col in self.frame.columns:
            values = pd.to_numeric(self.frame[col], errors="coerce").to_numpy(dtype=float)
            values = values if np.isfinite(values).any() else None
        self._columns[name] = values
        return values


def normalise_stages(stages: pd.DataFrame, *, source: str = "stages") -> StageTable:
    """Check columns, drop unusable stages (noting why), sort by rate. Raises on missing columns."""
    if not isinstance(stages, pd.DataFrame):
        raise CapacityError(f"{source}: expected a table of stages")
    df = stages.copy()
    for name in RESOURCE_COLUMNS:
        if name in df.columns and f"m_{name}" not in df.columns:
            df = df.rename(columns={name: f"m_{name}"})
    rate_col = "offered_rps" if "offered_rps" in df.columns else ("target_rps" if "target_rps" in df.columns else None)
    missing = [
        c
        for c, ok in (("target_rps or offered_rps", rate_col), ("achieved_rps", "achieved_rps" in df.columns))
        if not ok
    ]
    if missing:
        raise CapacityError(f"{source}: missing column(s) {', '.join(missing)} ({STAGE_COLUMNS_HELP})")
    assert rate_col is not None
    for col in (rate_col, "achieved_rps", "target_rps", *LATENCY_COLUMNS, "error_ratio"):
        if col in df.columns:
            df[col] = pd.to_numeric(df[col], errors="coerce")
    df["rate"] = df[rate_col]
    if rate_col == "offered_rps" and "target_rps" in df.columns:
        df["rate"] = df["rate"].where(df["rate"].notna() & (df["rate"] > 0), df["target_rps"])
    if "error_ratio" not in df.columns:
        df["error_ratio"] = 0.0
    if "verdict" not in df.columns:
        df["verdict"] = ""
    notes: list[str] = []
    valid = df["verdict"].map(is_valid_verdict).astype(bool)
    n_invalid = int((~valid).sum())
    if n_invalid:
        notes.append(f"{n_invalid} stage(s) invalid or interrupted: excluded")
    df = df[valid]
    usable = np.isfinite(df["rate"].to_numpy(dtype=float)) & np.isfinite(df["achieved_rps"].to_numpy(dtype=float))
    usable &= df["rate"].to_numpy(dtype=float) > 0
    if (~usable).any():
        notes.append(f"{int((~usable).sum())} stage(s) without a rate or goodput (NaN): excluded")
    df = df[usable].sort_values("rate", kind="stable").reset_index(drop=True)
    table = StageTable(frame=df, notes=notes)
    aborted, censored = int(table.flag("aborted_early").sum()), int(table.flag("percentiles_censored").sum())
    if aborted:
        notes.append(f"{aborted} stage(s) aborted early: their figures cover the seconds they ran (weighted so)")
    if censored:
        notes.append(
            f"{censored} stage(s) with censored percentiles (requests unfinished at the abort): lower bounds, "
            "left out of the queueing fit"
        )
    return table
