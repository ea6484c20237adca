"""``capacity analyze`` / ``analyse`` / ``size``: CSV and run-folder input, JSON output, one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from capacity.testing import SyntheticSpec, synthetic_run
from tests.conftest import Cli
from tests.helpers import make_experiment, make_stage_result

REF = Path(__file__).parent / "data" / "reference"


@pytest.fixture
def stage_csv(tmp_path: Path) -> Path:
    stages, _ = synthetic_run(SyntheticSpec(servers=8, service_s=0.05, start_frac=0.3, growth=1.3, seed=4))
    path = tmp_path / "stages.csv"
    stages.rename(columns={"m_cpu_pct": "cpu_pct"}).to_csv(path, index=False)
    return path


def test_analyze_csv_json(stage_csv: Path, cli: Cli) -> None:
    code, out, _ = cli("analyze", str(stage_csv), "--json", "--boot", "30")
    assert code == 0
    data = json.loads(out)
    assert data["saturation"]["value"] == pytest.approx(160, rel=0.05)
    assert "cpu_pct" in data["knees"]


def test_analyse_alias_and_text(stage_csv: Path, cli: Cli) -> None:
    code, out, _ = cli("analyse", str(stage_csv), "--boot", "20")
    assert code == 0 and "saturation:" in out and "SLO capacity:" in out


def test_analyze_scaling_table(cli: Cli, tmp_path: Path) -> None:
    cisco = pd.read_csv(REF / "usl_cisco_practical_scalability.csv")
    path = tmp_path / "scaling.csv"
    cisco.to_csv(path, index=False)
    code, out, _ = cli("analyze", str(path), "--json")
    assert code == 0
    assert json.loads(out)["usl"]["sigma"] == pytest.approx(0.02671591, rel=1e-3)


@pytest.mark.parametrize(
    ("content", "expected"),
    [("target_rps,p95_ms\n10,20\n", "missing column(s) achieved_rps"), ("", "not a readable CSV")],
)
def test_bad_csv_is_one_line_exit_2(tmp_path: Path, cli: Cli, content: str, expected: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(content)
    code, _, err = cli("analyze", str(path))
    assert code == 2 and expected in err and err.count("\n") == 1 and "Traceback" not in err


def test_missing_path_exit_2(tmp_path: Path, cli: Cli) -> None:
    code, _, err = cli("analyze", str(tmp_path / "nope.csv"))
    assert code == 2 and "no such run folder or CSV" in err


def test_run_folder_writes_analysis_json(tmp_path: Path, cli: Cli) -> None:
    from capacity.core.models import SecondSample
    from capacity.store import RunStore

    stages, seconds = synthetic_run(SyntheticSpec(servers=8, service_s=0.05, start_frac=0.3, growth=1.3, seed=4))
    store = RunStore.create(tmp_path, make_experiment(builtin=True), run_id="t-run")
    for row in stages.to_dict("records"):
        result = make_stage_result(
            index=row["index"],
            target_rps=row["target_rps"],
            offered_rps=row["offered_rps"],
            achieved_rps=row["achieved_rps"],
            p50_ms=row["p50_ms"],
            p95_ms=row["p95_ms"],
            p99_ms=row["p99_ms"],
            error_ratio=row["error_ratio"],
            verdict=row["verdict"],
            reasons=[r for r in row["reasons"].split("; ") if r],
            metrics={"cpu_pct": row["m_cpu_pct"]},
        )
        secs = [
            SecondSample(**{k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in s.items()})
            for s in seconds[seconds.stage == row["index"]].to_dict("records")
        ]
        store.write_stage(result, secs)
    code, out, _ = cli("analyze", str(store.path), "--boot", "20")
    assert code == 0
    written = json.loads((store.path / "analysis.json").read_text())
    assert written["saturation"]["value"] == pytest.approx(160, rel=0.05)
    assert written["details"]["interval_basis"] == "seconds"
    code, out, _ = cli("size", str(store.path), "--json", "--boot", "0")
    assert code == 0
    rec = json.loads(out)
    assert rec["app_tasks"] % rec["inputs"]["zones"] == 0
    assert "1x peak" in rec["scenarios"]  # plus the experiment's own scenarios; no built-in tps ones (issue 14)


def test_size_csv(stage_csv: Path, cli: Cli) -> None:
    code, out, err = cli(
        "size",
        str(stage_csv),
        "--peak-rpm",
        "9015",
        "--app-tasks",
        "2",
        "--zones",
        "3",
        "--target-util",
        "0.6",
        "--json",
        "--boot",
        "0",
        "--signal",
        "saturation",
    )
    assert code == 0, err
    rec = json.loads(out)
    per_task = rec["per_task_rps"]
    assert per_task == pytest.approx(rec["inputs"]["capacity_rps"] / 2)
    raw = 9015 / 60 * 1.2 / per_task  # default throughput headroom 0.2; the CPU target is for CPU only
    assert rec["figures"]["raw_tasks_capacity"] == pytest.approx(raw)
    assert rec["app_tasks_range"][0] <= rec["app_tasks"] <= rec["app_tasks_range"][1]
    assert [s["step"] for s in rec["chain"]][:3] == ["demand", "per-task capacity", "tasks by throughput"]
    assert rec["app_tasks"] >= raw and rec["app_tasks"] % 3 == 0


def test_size_without_peak_is_one_line(stage_csv: Path, cli: Cli) -> None:
    code, _, err = cli("size", str(stage_csv), "--boot", "0")
    assert code == 2 and "no production peak" in err
