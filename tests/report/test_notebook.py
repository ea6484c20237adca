"""The notebook API (capacity.notebook) and the analysis notebook, run headless against a synthetic run."""

from __future__ import annotations

import json
import math
import shutil
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

from capacity import notebook as cn
from capacity.core.errors import CapacityError
from tests.conftest import REPO
from tests.report.conftest import make_run

DAY1 = datetime(2026, 11, 26, 3, 0, tzinfo=UTC)
NOTEBOOK = REPO / "notebooks" / "capacity-analysis.ipynb"


@pytest.fixture(scope="module")
def written_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three runs written once per module; ``root`` copies them for each test."""
    r = tmp_path_factory.mktemp("notebook") / "results"
    make_run(r, 120.0, run_id="20261126T030000Z-nightly-test-aaaa", started=DAY1)
    make_run(r, 90.0, run_id="20261127T030000Z-nightly-test-bbbb", started=DAY1 + timedelta(days=1))
    make_run(r, 40.0, name="other", run_id="20261125T030000Z-other-cccc", started=DAY1 - timedelta(days=1))
    return r


@pytest.fixture
def root(tmp_path: Path, written_root: Path) -> Path:
    return Path(shutil.copytree(written_root, tmp_path / "results"))


def test_load_one_run(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(cn.RUN_DIR_ENV, raising=False)
    run = cn.load(root=root)  # the newest run
    assert run.run_id == "20261127T030000Z-nightly-test-bbbb" and run.experiment == "nightly-test"
    assert list(run.stages["target_rps"]) == pytest.approx([36.0, 54.0, 72.0, 90.0, 108.0])
    assert len(run.seconds) == 50 and len(run.measured_seconds) == 40
    assert set(run.measured_seconds["phase"]) == {"measure"}
    assert run.summary is not None and run.summary.slo_capacity_rps == 90.0 and run.analysis["status"] == "ok"
    assert run.manifest["experiment"]["name"] == "nightly-test"
    assert run.estimates.loc["slo_capacity", "value"] == 90.0
    cpu = run.metric("cpu_pct")
    assert len(cpu) == 10 and list(cpu.columns) == ["stage", "metric", "group", "t", "value"]
    assert cpu["t"].isin(run.seconds["t"]).all()  # one time column: a metric joins the seconds on t
    monkeypatch.setenv(cn.RUN_DIR_ENV, str(root / "20261126T030000Z-nightly-test-aaaa"))
    assert getattr(cn.load(root=root).summary, "slo_capacity_rps", None) == 120.0
    with pytest.raises(CapacityError, match="no run folders"):
        monkeypatch.delenv(cn.RUN_DIR_ENV)
        cn.load(root=root / "empty")


def test_history_frames(root: Path) -> None:
    runs = cn.load_all(root)
    assert list(runs["run_id"]) == [
        "20261127T030000Z-nightly-test-bbbb",
        "20261126T030000Z-nightly-test-aaaa",
        "20261125T030000Z-other-cccc",
    ]
    assert list(runs["slo_capacity_rps"]) == [90.0, 120.0, 40.0]
    assert isinstance(runs["started_at"].dtype, pd.DatetimeTZDtype)
    stages = cn.stages_all(root)
    assert len(stages) == 15 and list(stages.columns[:3]) == ["run_id", "experiment", "run_started_at"]
    assert stages.groupby("run_id")["verdict"].apply(lambda v: (v == "fail").sum()).tolist() == [1, 1, 1]
    assert cn.load_all(root / "none").empty and cn.stages_all(root / "none").empty


@pytest.mark.slow
# jupyter_client's heartbeat thread trips over pytest's running loop at shutdown: harmless, known upstream
@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
@pytest.mark.filterwarnings("ignore:coroutine 'HBChannel._async_run' was never awaited:RuntimeWarning")
def test_notebook_executes_headless(root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import nbformat
    from nbclient import NotebookClient

    # A kernel spec named python3 that runs *this* interpreter, first on JUPYTER_PATH: whatever kernels the
    # machine has registered (or not), the notebook runs with the venv that has capacity installed.
    spec_dir = tmp_path / "jupyter" / "kernels" / "python3"
    spec_dir.mkdir(parents=True)
    (spec_dir / "kernel.json").write_text(
        json.dumps(
            {
                "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                "display_name": "Python 3 (capacity venv)",
                "language": "python",
            }
        )
    )
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    monkeypatch.setenv("CAPACITY_RESULTS", str(root))
    monkeypatch.delenv(cn.RUN_DIR_ENV, raising=False)  # default: the newest run
    nb = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(
        nb,
        kernel_name="python3",
        timeout=120,
        startup_timeout=60,
        resources={"metadata": {"path": str(tmp_path)}},
    ).execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    text = "".join(o.get("text", "") for o in outputs if o.get("output_type") == "stream")
    assert "run 20261127T030000Z-nightly-test-bbbb: experiment 'nightly-test', 5 stages, 50 seconds" in text
    assert "SLO capacity: 90.0 req/s [85.5, 94.5]" in text
    assert "15 stages across 3 runs" in text
    pngs = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(pngs) >= 5  # goodput/latency, per-second spread, timeline, metrics, history


def test_recommend_resizes_a_run_with_the_search_rules(root: Path) -> None:
    run = cn.load(root / "20261127T030000Z-nightly-test-bbbb")
    base = run.recommend(peak_rpm={"a": 60 * 30.0}, zones=1, n_plus_one=False, min_tasks=1, throughput_headroom=0.0)
    per_task = base["per_task_rps"]
    assert base["app_tasks"] == math.ceil(30.0 / per_task - 1e-9)  # demand / per-task SLO capacity, whole tasks
    more = run.recommend(peak_rpm={"a": 60 * 30.0}, zones=1, n_plus_one=False, min_tasks=1, throughput_headroom=1.0)
    assert more["app_tasks"] == math.ceil(60.0 / per_task - 1e-9)  # the headroom on req/s, nothing else
