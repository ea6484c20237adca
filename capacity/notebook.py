"""The Python API for notebooks: one run, or the whole results history, as pandas DataFrames.

    from capacity import notebook as cn
    run = cn.load()                 # $CAPACITY_RUN_DIR, else the newest run under ./results
    run.stages, run.seconds, run.metrics, run.endpoints, run.flows, run.summary, run.analysis, run.manifest
    cn.load_all("results")          # one row per run: date, experiment, capacity with interval, ...
    cn.stages_all("results")        # every stage of every run, with run_id and experiment columns
    run.recommend(zones=2)          # re-size with other [production] settings: the rules search used
    s = cn.load_scaling("results/<series>")   # a capacity scale series: s.sizes, s.fit, s.recommendation

Read-only: it opens the files ``search`` wrote (docs/results.md) and never needs the tool running.
The plotting functions of the HTML report are re-exported (``goodput_figure`` ...) for reuse.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from capacity.errors import CapacityError
from capacity.report.listing import run_row
from capacity.store import LoadedRun, list_runs, load_run

RUN_DIR_ENV = "CAPACITY_RUN_DIR"


@dataclass
class Run:
    """One run folder in notebook-friendly form (plain dicts and DataFrames)."""

    path: Path
    run_id: str
    manifest: dict[str, Any]
    summary: dict[str, Any]
    analysis: dict[str, Any]
    stages: pd.DataFrame
    seconds: pd.DataFrame
    metrics: pd.DataFrame
    loaded: LoadedRun = field(repr=False)

    @property
    def experiment(self) -> str:
        return str(self.summary.get("experiment") or self.manifest.get("experiment_name") or "")

    @property
    def estimates(self) -> pd.DataFrame:
        """One row per estimate (slo_capacity, saturation, knee, ...): value, lo, hi, signal, method."""
        est = self.summary.get("estimates") or {}
        if not est and self.analysis:
            est = {k: v for k, v in self.analysis.items() if isinstance(v, dict) and "value" in v}
        return pd.DataFrame.from_dict(est, orient="index") if est else pd.DataFrame()

    @property
    def endpoints(self) -> pd.DataFrame:
        """Per stage and endpoint: requests, ok, errors, unfinished, p50/p95/p99 ms (``endpoints.parquet``)."""
        return self.loaded.endpoints

    @property
    def flows(self) -> pd.DataFrame:
        """Per stage and session flow: started, completed, failed (and at which step), unfinished, p50/p95 s."""
        return self.loaded.flows

    @property
    def measured_seconds(self) -> pd.DataFrame:
        """Per-second samples without warm-up (what the stage statistics are computed from)."""
        if self.seconds.empty or "phase" not in self.seconds.columns:
            return self.seconds
        return self.seconds[self.seconds["phase"] == "measure"].reset_index(drop=True)

    def recommend(self, **production: Any) -> dict[str, Any]:
        """The run re-sized by the one sizing rule set (``capacity.size.rules``), with ``[production]``
        settings changed by keyword (e.g. ``growth=1.5``, ``cpu_target=0.5``); with none it equals the
        stored ``summary["recommendation"]``."""
        from capacity.analyze import analyse_run
        from capacity.size import recommend

        exp = self.loaded.experiment
        if exp is None:
            raise CapacityError(f"{self.path}: no experiment in the manifest to size with")
        prod = exp.production.model_validate({**exp.production.model_dump(exclude_none=True), **production})
        analysis = analyse_run(self.stages, self.seconds, exp.guards)
        rec = recommend(analysis, self.stages, exp.cluster, prod, exp.workload, endpoints=self.endpoints)
        return rec.to_dict()

    def metric(self, name: str) -> pd.DataFrame:
        """One server metric in tidy form (stage, group, t, value), with ``time`` as a UTC timestamp."""
        if self.metrics.empty:
            return self.metrics
        frame = self.metrics[self.metrics["metric"] == name].copy()
        frame["time"] = pd.to_datetime(frame["t"], unit="s", utc=True)
        return frame.reset_index(drop=True)


def latest(root: str | Path = "results") -> Path:
    """The newest run folder under ``root`` (by start time)."""
    runs = list_runs(root)
    if not runs:
        raise CapacityError(f"{root}: no run folders (run 'capacity search' first)")
    return runs[0].path


def resolve_run_dir(run_dir: str | Path | None = None, root: str | Path = "results") -> Path:
    """``run_dir``, else ``$CAPACITY_RUN_DIR``, else the newest run under ``root``."""
    chosen = run_dir or os.environ.get(RUN_DIR_ENV) or None
    return Path(chosen) if chosen else latest(root)


def load(run_dir: str | Path | None = None, *, root: str | Path = "results") -> Run:
    """Load one run folder (see ``resolve_run_dir`` for the default)."""
    loaded = load_run(resolve_run_dir(run_dir, root))
    summary = json.loads(loaded.summary.model_dump_json()) if loaded.summary is not None else {}
    return Run(
        path=loaded.path,
        run_id=loaded.run_id,
        manifest=loaded.manifest,
        summary=summary,
        analysis=loaded.analysis or {},
        stages=loaded.stages,
        seconds=loaded.seconds,
        metrics=loaded.metrics,
        loaded=loaded,
    )


def load_all(root: str | Path = "results") -> pd.DataFrame:
    """One row per run under ``root``, newest first: the columns of ``capacity results list --json``."""
    rows = [run_row(r) for r in list_runs(root)]
    frame = pd.DataFrame(rows)
    if not frame.empty:
        frame["started_at"] = pd.to_datetime(frame["started_at"], utc=True, errors="coerce", format="ISO8601")
    return frame


def stages_all(root: str | Path = "results") -> pd.DataFrame:
    """Every stage of every run under ``root``, with ``run_id``, ``experiment`` and ``run_started_at``."""
    parts = []
    for r in list_runs(root):
        if r.stages.empty:
            continue
        frame = r.stages.copy()
        frame.insert(0, "run_id", r.run_id)
        frame.insert(1, "experiment", r.experiment_name)
        started = pd.to_datetime(r.started_at, utc=True, errors="coerce", format="ISO8601")
        frame.insert(2, "run_started_at", [started] * len(frame))
        parts.append(frame)
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


@dataclass
class Scaling:
    """A ``capacity scale`` series: one row per size, the fitted curve, the recommendation, the runs."""

    path: Path
    data: dict[str, Any]
    sizes: pd.DataFrame
    fit: dict[str, Any]
    recommendation: dict[str, Any]

    def run(self, app_tasks: int) -> Run:
        """The search run of one size."""
        match = self.sizes.loc[self.sizes["app_tasks"] == app_tasks, "run_id"]
        if match.empty:
            raise CapacityError(f"{self.path}: no size with {app_tasks} app tasks")
        return load(self.path / str(match.iloc[0]))

    def figure(self) -> Any:
        """Capacity against app tasks, the fit and production's point (the report's figure)."""
        from capacity.report.scale_plots import scaling_figure

        return scaling_figure(self.data)


def load_scaling(path: str | Path) -> Scaling:
    """Load a scaling series folder (``scaling.json`` and one run folder per size)."""
    from capacity.store.scaling import load_scaling as read

    data = read(path)
    return Scaling(
        path=Path(data["path"]),
        data=data,
        sizes=pd.DataFrame(data.get("sizes") or []),
        fit=data.get("fit") or {},
        recommendation=data.get("recommendation") or {},
    )


def __getattr__(name: str) -> Any:
    """Lazily re-export the report's figure functions (matplotlib is imported only when asked)."""
    if name in (
        "goodput_figure",
        "latency_figure",
        "resources_figure",
        "timeline_figure",
        "search_path_figure",
    ):
        from capacity.report import plots

        return getattr(plots, name)
    raise AttributeError(name)
