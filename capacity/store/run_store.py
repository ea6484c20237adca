"""Writing a run folder: each stage lands atomically when it ends, so an interrupt loses nothing.

Layout (docs/results.md documents every file and column)::

    results/<run_id>/manifest.json        experiment as run, versions, git revision, host, times
                     stages/stage-000.json one StageResult per finished stage
                     series/stage-000.parquet, metrics/stage-000.parquet, histograms/stage-000.hdr
                     stages.parquet, series.parquet, metrics.parquet   (all stages so far)
                     endpoints.parquet                  (one row per stage and endpoint)
                     flows.parquet                      (one row per stage and session flow)
                     summary.json, analysis.json, report.html, summary.md, run.log
"""

from __future__ import annotations

import json
import platform
import re
import secrets
import socket
import subprocess
import sys
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import pandas as pd

from capacity.core.models import RunSummary, SecondSample, StageResult
from capacity.plan.experiment import Experiment
from capacity.store.atomic import atomic_write_text
from capacity.store.reader import stage_results_in
from capacity.store.tables import (
    METRIC_COLUMNS,
    SERIES_COLUMNS,
    endpoint_table,
    flow_table,
    read_table,
    stage_row,
    write_table,
)


def new_run_id(experiment_name: str, now: datetime | None = None) -> str:
    """Sortable, unique and readable: ``20261127T031500Z-sandbox-ab12``."""
    now = now or datetime.now(UTC)
    slug = re.sub(r"[^a-z0-9]+", "-", experiment_name.lower()).strip("-")[:40] or "run"
    return f"{now.strftime('%Y%m%dT%H%M%SZ')}-{slug}-{secrets.token_hex(2)}"


def _git_revision() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            cwd=Path(__file__).resolve().parent,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    rev = out.stdout.strip()
    return rev if out.returncode == 0 and rev else None


def _versions() -> dict[str, str]:
    found: dict[str, str] = {"python": platform.python_version()}
    for pkg in ("capacity", "locust", "datadog-api-client", "numpy", "scipy", "pandas", "pyarrow"):
        try:
            found[pkg] = version(pkg)
        except PackageNotFoundError:
            continue
    return found


def _stage_name(index: int) -> str:
    return f"stage-{index:03d}"


class RunStore:
    """A run folder being written. Create once per run; every write is atomic."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.run_id = self.path.name

    # -- creation -------------------------------------------------------------------------------
    @classmethod
    def create(
        cls,
        root: Path,
        experiment: Experiment,
        *,
        run_id: str | None = None,
        command: str = "",
        target: str | None = None,
        extra: dict[str, Any] | None = None,
    ) -> RunStore:
        run_id = run_id or new_run_id(experiment.name)
        path = Path(root) / run_id
        path.mkdir(parents=True, exist_ok=False)
        for sub in ("stages", "series", "metrics", "histograms"):
            (path / sub).mkdir()
        store = cls(path)
        manifest: dict[str, Any] = {
            "run_id": run_id,
            "experiment_name": experiment.name,
            "experiment_file": experiment.source_file,
            "experiment": experiment.model_dump(mode="json"),
            "target": target or experiment.target.base_url,
            "versions": _versions(),
            "git_revision": _git_revision(),
            "host": socket.gethostname(),
            "platform": platform.platform(),
            "argv": sys.argv[1:],
            "command": command,
            "started_at": datetime.now(UTC).isoformat(),
            "ended_at": None,
            **(extra or {}),
        }
        store.write_json("manifest.json", manifest)
        return store

    @classmethod
    def open(cls, path: Path | str) -> RunStore:
        p = Path(path)
        if not (p / "manifest.json").is_file():
            from capacity.core.errors import CapacityError

            raise CapacityError(f"{p}: not a run folder (no manifest.json)")
        return cls(p)

    # -- writing --------------------------------------------------------------------------------
    def write_json(self, name: str, data: dict[str, Any]) -> None:
        atomic_write_text(self.path / name, json.dumps(data, indent=2, default=str, allow_nan=False) + "\n")

    def read_json(self, name: str) -> dict[str, Any] | None:
        p = self.path / name
        if not p.is_file():
            return None
        data: dict[str, Any] = json.loads(p.read_text(encoding="utf-8"))
        return data

    def update_manifest(self, **fields: Any) -> None:
        manifest = self.read_json("manifest.json") or {}
        manifest.update(fields)
        self.write_json("manifest.json", manifest)

    def write_stage(
        self,
        result: StageResult,
        seconds: list[SecondSample],
        metrics: pd.DataFrame | None = None,
        histogram_b64: str | None = None,
    ) -> None:
        """Persist one finished stage, then refresh the all-stages tables."""
        name = _stage_name(result.index)
        series = pd.DataFrame([s.model_dump() for s in seconds], columns=SERIES_COLUMNS)
        write_table(series, self.path / "series" / name)
        if metrics is not None and not metrics.empty:
            write_table(metrics.reindex(columns=METRIC_COLUMNS), self.path / "metrics" / name)
        if histogram_b64:
            atomic_write_text(self.path / "histograms" / f"{name}.hdr", histogram_b64)
        atomic_write_text(self.path / "stages" / f"{name}.json", result.model_dump_json(indent=2) + "\n")
        self._refresh_tables()

    def rewrite_stage_result(self, result: StageResult) -> None:
        """Replace a stage's judged result (re-judged after late metrics), then refresh the tables."""
        atomic_write_text(
            self.path / "stages" / f"{_stage_name(result.index)}.json", result.model_dump_json(indent=2) + "\n"
        )
        self._refresh_tables()

    def update_stage_metrics(
        self,
        index: int,
        metrics: pd.DataFrame,
        aggregates: dict[str, float | None],
        completeness: dict[str, float],
    ) -> None:
        """Replace a stage's server metrics (late CloudWatch data filled by a catch-up pass)."""
        name = _stage_name(index)
        stage_file = self.path / "stages" / f"{name}.json"
        result = StageResult.model_validate_json(stage_file.read_text(encoding="utf-8"))
        merged = {**result.metrics, **aggregates}
        result = result.model_copy(
            update={"metrics": merged, "metrics_completeness": {**result.metrics_completeness, **completeness}}
        )
        if not metrics.empty:
            write_table(metrics.reindex(columns=METRIC_COLUMNS), self.path / "metrics" / name)
        atomic_write_text(stage_file, result.model_dump_json(indent=2) + "\n")
        self._refresh_tables()
        summary = self.read_json("summary.json")
        if summary:
            for st in summary.get("stages", []):
                if st.get("index") == index:
                    st["metrics"] = merged
                    st["metrics_completeness"] = result.metrics_completeness
            self.write_json("summary.json", summary)

    def stage_results(self) -> list[StageResult]:
        """The per-stage JSON files (a damaged one is refused naming it)."""
        return stage_results_in(self.path)

    def _refresh_tables(self) -> None:
        results = self.stage_results()
        write_table(pd.DataFrame([stage_row(r) for r in results]), self.path / "stages")
        write_table(endpoint_table(results), self.path / "endpoints")
        write_table(flow_table(results), self.path / "flows")
        for kind, cols in (("series", SERIES_COLUMNS), ("metrics", METRIC_COLUMNS)):
            parts = [read_table(p) for p in sorted((self.path / kind).glob("stage-*.*"))]
            parts = [p for p in parts if not p.empty]
            frame = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=cols)
            write_table(frame, self.path / kind)

    def write_summary(self, summary: RunSummary) -> None:
        atomic_write_text(self.path / "summary.json", summary.model_dump_json(indent=2) + "\n")

    def finish(self, ended_at: datetime | None = None) -> None:
        self.update_manifest(ended_at=(ended_at or datetime.now(UTC)).isoformat())
