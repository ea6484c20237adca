"""Reading run folders back, for analysis, reports, comparisons and notebooks (no tool running).

A copy or sync can leave a file truncated. The all-stages tables are rebuilt from what they are
built from (the per-stage JSON files, the per-stage series and metrics), with a warning in
``LoadedRun.warnings``; a damaged file that nothing can replace is refused with one line naming it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from pydantic import ValidationError

from capacity.core.errors import CapacityError
from capacity.core.models import RunSummary, StageResult
from capacity.plan.experiment import Experiment
from capacity.store.tables import endpoint_table, flow_table, read_table, stage_row, table_path

UNREADABLE = (OSError, ValueError)
"""What a truncated or garbled table raises (pyarrow's ArrowInvalid is a ValueError, its IO errors OSError)."""


@dataclass
class LoadedRun:
    """Everything a run folder holds, as typed objects and DataFrames."""

    path: Path
    run_id: str
    manifest: dict[str, Any]
    summary: RunSummary | None
    experiment: Experiment | None
    stages: pd.DataFrame
    seconds: pd.DataFrame
    metrics: pd.DataFrame
    analysis: dict[str, Any] | None
    endpoints: pd.DataFrame = field(default_factory=pd.DataFrame)
    """One row per stage and endpoint (``endpoints.parquet``; empty for runs written before it existed)."""
    flows: pd.DataFrame = field(default_factory=pd.DataFrame)
    """One row per stage and session flow (``flows.parquet``; empty without session flows)."""
    warnings: list[str] = field(default_factory=list)
    """Damaged files read around (each names the file and what was read instead)."""

    @property
    def started_at(self) -> str:
        return str(self.manifest.get("started_at") or "")

    @property
    def experiment_name(self) -> str:
        return str(self.manifest.get("experiment_name") or (self.summary.experiment if self.summary else ""))


def _json(path: Path) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    try:
        data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise CapacityError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
    return data


def load_run(path: str | Path) -> LoadedRun:
    """Load a run folder; raises ``CapacityError`` if it is not one."""
    p = Path(path)
    manifest = _json(p / "manifest.json")
    if manifest is None:
        raise CapacityError(f"{p}: not a run folder (no manifest.json)")
    summary_data = _json(p / "summary.json")
    summary = None
    if summary_data is not None:
        try:
            summary = RunSummary.model_validate(summary_data)
        except ValidationError as exc:
            raise CapacityError(
                f"{p / 'summary.json'}: does not match the run summary ({exc.errors()[0]['msg']})"
            ) from None
    experiment = None
    if isinstance(manifest.get("experiment"), dict):
        try:
            experiment = Experiment.model_validate(manifest["experiment"])
        except ValidationError:
            experiment = None
    warnings: list[str] = []
    analysis = None
    try:
        analysis = _json(p / "analysis.json")
    except CapacityError as exc:  # rewritten by the next analysis: not worth refusing the run for
        warnings.append(f"{exc}: ignored")
    return LoadedRun(
        path=p,
        run_id=str(manifest.get("run_id") or p.name),
        manifest=manifest,
        summary=summary,
        experiment=experiment,
        stages=_from_stage_files(p, "stages", lambda rs: pd.DataFrame([stage_row(r) for r in rs]), warnings),
        seconds=_concatenated(p, "series", warnings),
        metrics=_concatenated(p, "metrics", warnings),
        analysis=analysis,
        endpoints=_from_stage_files(p, "endpoints", endpoint_table, warnings),
        flows=_from_stage_files(p, "flows", flow_table, warnings),
        warnings=warnings,
    )


def _from_stage_files(
    path: Path, name: str, rebuild: Callable[[list[StageResult]], pd.DataFrame], warnings: list[str]
) -> pd.DataFrame:
    """``<name>.parquet``, or the same rows rebuilt from the per-stage JSON files when it is damaged."""
    try:
        return read_table(path / name)
    except UNREADABLE as exc:
        results = stage_results_in(path)
        warnings.append(
            f"{table_path(path / name)}: unreadable ({_first_line(exc)}); "
            f"rebuilt from the {len(results)} stage file(s) stages/stage-*.json"
        )
        return rebuild(results)


def _concatenated(path: Path, kind: str, warnings: list[str]) -> pd.DataFrame:
    """``series``/``metrics`` for all stages, or the readable per-stage parts when the whole is damaged."""
    try:
        return read_table(path / kind)
    except UNREADABLE as exc:
        damaged = f"{table_path(path / kind)}: unreadable ({_first_line(exc)})"
    parts, skipped = [], []
    for part in sorted((path / kind).glob("stage-*.*")):
        try:
            parts.append(read_table(part))
        except UNREADABLE:
            skipped.append(part.name)
    left_out = f" (also unreadable, left out: {', '.join(skipped)})" if skipped else ""
    warnings.append(f"{damaged}; read from {kind}/stage-*{left_out}")
    parts = [frame for frame in parts if not frame.empty]
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def list_runs(root: str | Path = "results") -> list[LoadedRun]:
    """All run folders under ``root``, newest first; folders without a manifest are skipped."""
    r = Path(root)
    if not r.is_dir():
        return []
    runs = []
    for child in r.iterdir():
        if child.is_dir() and (child / "manifest.json").is_file():
            try:
                runs.append(load_run(child))
            except CapacityError:
                continue
    runs.sort(key=lambda run: (run.started_at, run.run_id), reverse=True)
    return runs


def stage_results(run: LoadedRun) -> list[StageResult]:
    """The run's stages as typed results (from the per-stage JSON files, the source of truth)."""
    return stage_results_in(run.path)


def stage_results_in(path: Path) -> list[StageResult]:
    """The per-stage JSON files of a run folder; a damaged one is refused naming it."""
    out = []
    for f in sorted((path / "stages").glob("stage-*.json")):
        try:
            out.append(StageResult.model_validate_json(f.read_text(encoding="utf-8")))
        except (ValidationError, UnicodeDecodeError, OSError) as exc:
            why = exc.errors()[0]["msg"] if isinstance(exc, ValidationError) else _first_line(exc)
            raise CapacityError(f"{f}: not a readable stage result ({why})") from None
    return out


def find_run_dir(spec: str | Path, root: str | Path = "results") -> Path | None:
    """A run folder named by its path, or by its run id under the results ``root``; None if neither exists."""
    path = Path(spec)
    if path.is_dir():
        return path
    under_root = Path(root) / spec
    return under_root if under_root.is_dir() else None
