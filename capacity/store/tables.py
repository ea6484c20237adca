"""Tables on disk: Parquet through pyarrow, CSV where pyarrow is unavailable.

Readers accept either, so a notebook opens a run whatever wrote it.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pandas as pd

from capacity.core.models import EndpointStats, FlowStats, SecondSample, StageResult
from capacity.store.atomic import atomic_write_bytes

SERIES_COLUMNS: list[str] = list(SecondSample.model_fields)
METRIC_COLUMNS: list[str] = ["stage", "metric", "group", "t", "value"]
ENDPOINT_COLUMNS: list[str] = ["stage", "endpoint", *EndpointStats.model_fields]
"""``endpoints.parquet``: one row per stage and endpoint, over the stage's window."""
FLOW_COLUMNS: list[str] = [
    "stage",
    "flow",
    *(k for k in FlowStats.model_fields if k != "failed_at_step"),
    "failed_at_step",
]
"""``flows.parquet``: one row per stage and session flow; ``failed_at_step`` as ``step:count, ...``."""

_NOT_FLAT = ("metrics", "reasons", "breaches", "metrics_completeness", "status_codes", "blind", "endpoints", "flows")
"""StageResult fields the stage table flattens (joined text, ``m_``/``complete_`` columns) or leaves out."""
STAGE_COLUMNS: list[str] = [
    *(k for k in StageResult.model_fields if k not in _NOT_FLAT),
    "reasons",
    "blind",
    "status_codes",
]
"""``stages.parquet``'s fixed columns (each run adds ``m_<metric>`` and ``complete_<metric>``)."""

try:  # pragma: no cover - exercised by whichever branch the environment has
    import pyarrow  # noqa: F401

    HAVE_PARQUET = True
except ImportError:  # pragma: no cover
    HAVE_PARQUET = False


def table_path(stem: Path) -> Path:
    """The file a table stem resolves to here (``.parquet`` or ``.csv``)."""
    return stem.with_suffix(".parquet" if HAVE_PARQUET else ".csv")


def write_table(frame: pd.DataFrame, stem: Path) -> Path:
    """Write atomically; returns the path written."""
    path = table_path(stem)
    if HAVE_PARQUET:
        buffer = io.BytesIO()
        frame.to_parquet(buffer, index=False)
        atomic_write_bytes(path, buffer.getvalue())
    else:
        atomic_write_bytes(path, frame.to_csv(index=False).encode("utf-8"))
    return path


def read_table(path_or_stem: Path) -> pd.DataFrame:
    """Read ``x.parquet`` or ``x.csv`` (given either, or the stem)."""
    p = Path(path_or_stem)
    candidates = [p] if p.suffix in (".parquet", ".csv") else [p.with_suffix(".parquet"), p.with_suffix(".csv")]
    for c in candidates:
        if c.is_file():
            if c.suffix == ".parquet":
                return pd.read_parquet(c)
            return pd.read_csv(c)
    return pd.DataFrame()


def stage_row(result: StageResult) -> dict[str, Any]:
    """Flatten a StageResult for the stage table: metrics as ``m_<name>``, reasons joined."""
    data = result.model_dump()
    row: dict[str, Any] = {k: v for k, v in data.items() if k not in _NOT_FLAT}
    row["reasons"] = "; ".join(result.reasons)
    row["blind"] = ", ".join(result.blind)
    for name, value in result.metrics.items():
        row[f"m_{name}"] = value
    for name, value in result.metrics_completeness.items():
        row[f"complete_{name}"] = value
    row["status_codes"] = ", ".join(f"{k}:{v}" for k, v in sorted(result.status_codes.items()))
    return row


def endpoint_table(results: list[StageResult]) -> pd.DataFrame:
    """Every stage's per-endpoint figures as one flat table (columns ``ENDPOINT_COLUMNS``)."""
    rows = [
        {"stage": r.index, "endpoint": name, **stats.model_dump()}
        for r in results
        for name, stats in r.endpoints.items()
    ]
    return pd.DataFrame(rows, columns=ENDPOINT_COLUMNS)


def flow_table(results: list[StageResult]) -> pd.DataFrame:
    """Every stage's per-flow session figures as one flat table (columns ``FLOW_COLUMNS``)."""
    rows = []
    for r in results:
        for name, stats in r.flows.items():
            row = {"stage": r.index, "flow": name, **stats.model_dump()}
            row["failed_at_step"] = ", ".join(f"{k}:{v}" for k, v in sorted(stats.failed_at_step.items()))
            rows.append(row)
    return pd.DataFrame(rows, columns=FLOW_COLUMNS)
