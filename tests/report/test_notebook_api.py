"""What a notebook user sees of the API: tab completion, frames that keep their columns, the typed summary."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

import capacity
import capacity.analyze
import capacity.search
from capacity import notebook as cn
from capacity.core.models import RunSummary


def test_dir_lists_the_lazy_names_of_every_lazy_package() -> None:
    assert {"analyse_run", "analyse_scaling", "USL", "UslFit", "kneedle"} <= set(dir(capacity.analyze))
    assert {"run_search", "SearchRun", "run_nightly", "backfill_run"} <= set(dir(capacity.search))
    assert {"timeline_figure", "goodput_figure", "load", "load_all"} <= set(dir(cn))
    assert {"__version__", "notebook", "load_run", "load_all", "load_experiment", "run_search"} <= set(dir(capacity))


def test_the_top_package_reaches_the_entry_points_lazily() -> None:
    assert capacity.notebook is cn and capacity.load_run is cn.load and capacity.load_all is cn.load_all
    from capacity.plan.experiment import load_experiment

    assert capacity.load_experiment is load_experiment
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        capacity.nope  # noqa: B018


def _unfinished(tmp_path: Path) -> Path:
    """A run folder as it is before its first stage is stored: only the manifest."""
    path = tmp_path / "r1"
    path.mkdir()
    (path / "manifest.json").write_text(json.dumps({"run_id": "r1", "experiment_name": "x"}))
    return path


def test_frames_of_a_run_without_rows_keep_their_columns(tmp_path: Path) -> None:
    run = cn.load(_unfinished(tmp_path))
    assert run.summary is None
    assert {"index", "target_rps", "achieved_rps", "p95_ms", "verdict", "reasons"} <= set(run.stages.columns)
    assert {"stage", "t", "phase", "offered", "ok", "p95_ms"} <= set(run.seconds.columns)
    assert list(run.measured_seconds.columns) == list(run.seconds.columns)
    assert list(run.metric("cpu_pct").columns) == ["stage", "metric", "group", "t", "value"]
    assert list(run.estimates.columns) == ["value", "lo", "hi", "signal", "method", "reached", "extrapolated", "note"]
    assert {"stage", "endpoint", "p95_ms"} <= set(run.endpoints.columns)
    assert {"stage", "flow", "failed_at_step"} <= set(run.flows.columns)
    assert all(frame.empty for frame in (run.stages, run.seconds, run.metrics, run.estimates))


def test_history_of_an_empty_results_folder_keeps_its_columns(tmp_path: Path) -> None:
    runs = cn.load_all(tmp_path)
    assert runs.empty and {"run_id", "started_at", "experiment", "slo_capacity_rps"} <= set(runs.columns)
    assert isinstance(runs["started_at"].dtype, pd.DatetimeTZDtype)
    stages = cn.stages_all(tmp_path)
    assert stages.empty and list(stages.columns[:4]) == ["run_id", "experiment", "run_started_at", "index"]


def test_stage_columns_match_what_a_stored_run_holds(tmp_path: Path, synthetic_run: Callable[..., Path]) -> None:
    run = cn.load(synthetic_run(tmp_path / "results", 90.0))
    fixed = [c for c in run.stages.columns if not c.startswith(("m_", "complete_"))]
    assert fixed == cn.STAGE_COLUMNS
    assert list(cn.stages_all(tmp_path / "results").columns[:4]) == cn.RUN_STAGE_COLUMNS[:4]


def test_the_summary_is_the_typed_model_and_to_dict_is_its_json(
    tmp_path: Path, synthetic_run: Callable[..., Path]
) -> None:
    path = synthetic_run(tmp_path / "results", 90.0)
    run = cn.load(path)
    assert isinstance(run.summary, RunSummary)
    assert run.summary.slo_capacity_rps == 90.0 and run.summary.estimates["slo_capacity"].value == 90.0
    plain = run.summary.to_dict()
    assert plain == json.loads(run.summary.model_dump_json())  # what the notebook's dict was
    assert plain == json.loads((path / "summary.json").read_text())
    assert plain["capacity_interval"] == [85.5, 94.5] and isinstance(plain["started_at"], str)
