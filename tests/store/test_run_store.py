"""The results folder: every stage on disk when it ends, tables readable without the tool, secrets absent."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

from capacity.core.errors import CapacityError
from capacity.core.models import RunSummary, SecondSample, StageResult
from capacity.plan.experiment import parse_experiment
from capacity.store import RunStore, list_runs, load_run, stage_results
from tests.helpers import make_stage_result

EXP = parse_experiment(
    {
        "name": "store test",
        "target": {"base_url": "http://127.0.0.1:1"},
        "workload": {"endpoints": [{"name": "a", "path": "/a"}]},
    }
)


def stage(i: int, verdict: str = "pass") -> tuple[StageResult, list[SecondSample]]:
    t0 = datetime(2026, 11, 27, 3, 0, tzinfo=UTC) + timedelta(seconds=20 * i)
    result = make_stage_result(
        index=i,
        target_rps=10.0 * (i + 1),
        verdict=verdict,
        reasons=[] if verdict == "pass" else ["p95 900 ms > SLO"],
        metrics={"cpu_pct": 10.0 * (i + 1), "queue_size_max": None},
        started_at=t0,
        measure_from=t0 + timedelta(seconds=3),
        ended_at=t0 + timedelta(seconds=12),
    )
    secs = [
        SecondSample(
            stage=i,
            t=t0.timestamp() + s,
            phase="warmup" if s < 3 else "measure",
            target_rps=result.target_rps,
            offered=10 * (i + 1),
            ok=10 * (i + 1),
            errors=0,
            dropped=0,
            inflight=1,
            p50_ms=5,
            p95_ms=9,
            p99_ms=12,
        )
        for s in range(12)
    ]
    return result, secs


def test_stages_persist_one_by_one_and_read_back(tmp_path: Path) -> None:
    store = RunStore.create(tmp_path, EXP)
    assert store.path.parent == tmp_path and "store-test" in store.run_id
    manifest = json.loads((store.path / "manifest.json").read_text())
    assert manifest["experiment"]["name"] == "store test" and manifest["versions"]["python"]
    for i in range(3):
        r, secs = stage(i, "pass" if i < 2 else "fail")
        metrics = pd.DataFrame(
            {"stage": [i], "metric": ["cpu_pct"], "group": ["task_arn:a"], "t": [secs[5].t], "value": [10.0 * (i + 1)]}
        )
        store.write_stage(r, secs, metrics, "HISTFAKE")
        # after each stage, everything so far is on disk (an interrupt right now loses nothing)
        run = load_run(store.path)
        assert list(run.stages["index"]) == list(range(i + 1))
        assert len(run.seconds) == 12 * (i + 1)
    run = load_run(store.path)
    assert list(run.stages["verdict"]) == ["pass", "pass", "fail"]
    assert run.stages.loc[2, "reasons"] == "p95 900 ms > SLO"
    assert list(run.stages["m_cpu_pct"]) == [10.0, 20.0, 30.0]
    assert set(run.seconds["phase"]) == {"warmup", "measure"}
    assert list(run.metrics["value"]) == [10.0, 20.0, 30.0]
    assert (store.path / "histograms" / "stage-002.hdr").read_text() == "HISTFAKE"
    assert [s.verdict for s in stage_results(run)] == ["pass", "pass", "fail"]
    assert not list(store.path.rglob("*.tmp"))


def test_summary_and_listing(tmp_path: Path) -> None:
    a = RunStore.create(tmp_path, EXP, run_id="20260101T000000Z-a")
    b = RunStore.create(tmp_path, EXP, run_id="20260102T000000Z-b")
    for s in (a, b):
        s.write_summary(
            RunSummary(
                run_id=s.run_id,
                results_dir=str(s.path),
                experiment="store test",
                target="http://127.0.0.1:1",
                saturation_rps=100.0,
                stopped_reason="max_rps",
            )
        )
    (tmp_path / "not-a-run").mkdir()
    runs = list_runs(tmp_path)
    assert [r.run_id for r in runs][:2] in (
        ["20260102T000000Z-b", "20260101T000000Z-a"],
        ["20260101T000000Z-a", "20260102T000000Z-b"],
    )
    assert len(runs) == 2
    assert runs[0].summary is not None and runs[0].summary.saturation_rps == 100.0


def test_backfill_updates_stage_table_and_summary(tmp_path: Path) -> None:
    store = RunStore.create(tmp_path, EXP)
    r, secs = stage(0)
    store.write_stage(r.model_copy(update={"metrics_completeness": {"cpu_pct": 0.2}}), secs)
    store.write_summary(
        RunSummary(run_id=store.run_id, results_dir=str(store.path), experiment="x", target="t", stages=[r])
    )
    late = pd.DataFrame(
        {
            "stage": [0, 0],
            "metric": ["cloudwatch_cpu", "cloudwatch_cpu"],
            "group": ["*", "*"],
            "t": [1.0, 2.0],
            "value": [40.0, 60.0],
        }
    )
    store.update_stage_metrics(0, late, {"cloudwatch_cpu": 50.0}, {"cloudwatch_cpu": 1.0})
    run = load_run(store.path)
    assert run.stages.loc[0, "m_cloudwatch_cpu"] == 50.0
    assert run.stages.loc[0, "m_cpu_pct"] == 10.0
    assert run.summary is not None and run.summary.stages[0].metrics["cloudwatch_cpu"] == 50.0
    assert list(run.metrics["value"]) == [40.0, 60.0]


def test_not_a_run_folder(tmp_path: Path) -> None:
    with pytest.raises(CapacityError, match="not a run folder"):
        load_run(tmp_path)
