"""The Python API for notebooks: one run, or the whole results history, as pandas DataFrames.

    from capacity import notebook as cn
    run = cn.load()                 # $CAPACITY_RUN_DIR, else the newest run under ./results
    run.stages, run.seconds, run.metrics, run.endpoints, run.flows, run.analysis, run.manifest
    run.summary.slo_capacity_rps    # the typed run summary (None before the run wrote one); .to_dict()
    cn.load_all("results")          # one row per run: date, experiment, capacity with interval, ...
    cn.stages_all("results")        # every stage of every run, with run_id and experiment columns
    run.recommend(zones=2)          # re-size with other [production] settings: the rules search used
    s = cn.load_scaling("results/<series>")   # a capacity scale series: s.sizes, s.fit, s.recommendation

Read-only: it opens the files ``search`` wrote (docs/results.md) and never needs the tool running.
Every frame keeps its columns when it has no rows (a notebook needs no ``if c in df.columns``), and
time is the column ``t`` (unix seconds) in every frame, so frames join on it. The plotting functions
of the HTML report are re-exported (``goodput_figure`` ...) for reuse.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from capacity.core.errors import CapacityError
from capacity.core.lazy import lazy_names
from capacity.core.models import Estimate, RunSummary
from capacity.report.listing import LIST_COLUMNS, run_row
from capacity.store import LoadedRun, list_runs, load_run
from capacity.store.tables import (
    ENDPOINT_COLUMNS,
    FLOW_COLUMNS,
    METRIC_COLUMNS,
    SERIES_COLUMNS,
    STAGE_COLUMNS,
)

RUN_DIR_ENV = "CAPACITY_RUN_DIR"
ESTIMATE_COLUMNS: list[str] = list(Estimate.model_fields)
RUN_STAGE_COLUMNS: list[str] = ["run_id", "experiment", "run_started_at", *STAGE_COLUMNS]
"""``stages_all``: every run's stages, with the run they belong to first."""
FIGURES = dict.fromkeys(
    ("goodput_figure", "latency_figure", "resources_figure", "timeline_figure", "search_path_figure"),
    "capacity.report.plots",
)
"""The report's figure functions, re-exported on first use (matplotlib is imported only then)."""


def _framed(frame: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """``frame``, or an empty frame with ``columns`` when it has no rows (a run without that table)."""
    return frame if not frame.empty or list(frame.columns) else pd.DataFrame(columns=columns)


@dataclass
class Run:
    """One run folder in notebook-friendly form: DataFrames, the typed summary, plain dicts."""

    path: Path
    run_id: str
    manifest: dict[str, Any]
    summary: RunSummary | None
    """``summary.json`` as its model (``None`` for a run that has not finished); ``.to_dict()`` for JSON."""
    analysis: dict[str, Any]
    stages: pd.DataFrame
    seconds: pd.DataFrame
    metrics: pd.DataFrame
    loaded: LoadedRun = field(repr=False)

    @property
    def experiment(self) -> str:
        return str((self.summary.experiment if self.summary else "") or self.manifest.get("experiment_name") or "")

    @property
    def estimates(self) -> pd.DataFrame:
        """One row per estimate (slo_capacity, saturation, knee, ...): value, lo, hi, signal, method."""
        est = self.summary.to_dict()["estimates"] if self.summary else {}
        if not est and self.analysis:
            est = {k: v for k, v in self.analysis.items() if isinstance(v, dict) and "value" in v}
        return pd.DataFrame.from_dict(est, orient="index") if est else pd.DataFrame(columns=ESTIMATE_COLUMNS)

    @property
    def endpoints(self) -> pd.DataFrame:
        """Per stage and endpoint: requests, ok, errors, unfinished, p50/p95/p99 ms (``endpoints.parquet``)."""
        return _framed(self.loaded.endpoints, ENDPOINT_COLUMNS)

    @property
    def flows(self) -> pd.DataFrame:
        """Per stage and session flow: started, completed, failed (and at which step), unfinished, p50/p95 s."""
        return _framed(self.loaded.flows, FLOW_COLUMNS)

    @property
    def measured_seconds(self) -> pd.DataFrame:
        """Per-second samples without warm-up (what the stage statistics are computed from)."""
        if "phase" not in self.seconds.columns:  # a frame from outside the tool
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
        """One server metric in tidy form (stage, metric, group, t, value); ``t`` in unix seconds, as in
        ``seconds`` (``pd.to_datetime(df["t"], unit="s", utc=True)`` for timestamps)."""
        return self.metrics[self.metrics["metric"] == name].reset_index(drop=True)


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
    return Run(
        path=loaded.path,
        run_id=loaded.run_id,
        manifest=loaded.manifest,
        summary=loaded.summary,
        analysis=loaded.analysis or {},
        stages=_framed(loaded.stages, STAGE_COLUMNS),
        seconds=_framed(loaded.seconds, SERIES_COLUMNS),
        metrics=_framed(loaded.metrics, METRIC_COLUMNS),
        loaded=loaded,
    )


def load_all(root: str | Path = "results") -> pd.DataFrame:
    """One row per run under ``root``, newest first: the columns of ``capacity results list --json``."""
    rows = [run_row(r) for r in list_runs(root)]
    frame = pd.DataFrame(rows) if rows else pd.DataFrame(columns=list(LIST_COLUMNS))
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
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=RUN_STAGE_COLUMNS)


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
    from capacity.store.scaling_series import load_scaling as read

    data = read(path)
    return Scaling(
        path=Path(data["path"]),
        data=data,
        sizes=pd.DataFrame(data.get("sizes") or []),
        fit=data.get("fit") or {},
        recommendation=data.get("recommendation") or {},
    )


__getattr__, __dir__ = lazy_names(__name__, FIGURES, globals())
