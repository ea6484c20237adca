"""Reading run folders back, for analysis, reports, comparisons and notebooks (no tool running)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from pydantic import ValidationError

from capacity.errors import CapacityError
from capacity.models import RunSummary, StageResult
from capacity.plan.experiment import Experiment
from capacity.store.tables import read_table


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
    return LoadedRun(
        path=p,
        run_id=str(manifest.get("run_id") or p.name),
        manifest=manifest,
        summary=summary,
        experiment=experiment,
        stages=read_table(p / "stages"),
        seconds=read_table(p / "series"),
        metrics=read_table(p / "metrics"),
        analysis=_json(p / "analysis.json"),
        endpoints=read_table(p / "endpoints"),
    )


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
    return [
        StageResult.model_validate_json(f.read_text(encoding="utf-8"))
        for f in sorted((run.path / "stages").glob("stage-*.json"))
    ]


def find_run_dir(spec: str | Path, root: str | Path = "results") -> Path | None:
    """A run folder named by its path, or by its run id under the results ``root``; None if neither exists."""
    path = Path(spec)
    if path.is_dir():
        return path
    under_root = Path(root) / spec
    return under_root if under_root.is_dir() else None
