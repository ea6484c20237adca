"""``run_scale``'s flow with each size's search replaced by a synthetic one (no load): the fit is of SLO
capacity, one size gives the search's own answer, 3 sizes are exact and uncheckable, 4 give
leave-one-out errors, and ``repeat`` stores replicates that enter the fit."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from rich.console import Console

import capacity.search.scale as scale
from capacity.analyze import analyse_run
from capacity.core.models import RunSummary
from capacity.sandbox.contention import usl_rps
from capacity.search import SearchOptions
from capacity.search.scale import ScaleOptions, run_scale
from capacity.search.scale_control import SandboxControl
from capacity.size import recommend
from tests.helpers import make_experiment

LAM, SIGMA, KAPPA = 100.0, 0.1, 0.01


def _stages(capacity: float) -> pd.DataFrame:
    rates = [capacity * f for f in (0.4, 0.7, 0.9, 0.97, 1.03, 1.2)]
    p95 = [40.0, 45.0, 60.0, 150.0, 2000.0, 4000.0]
    return pd.DataFrame(
        {
            "target_rps": rates,
            "offered_rps": rates,
            "achieved_rps": [min(r, capacity) for r in rates],
            "p95_ms": p95,
            "error_ratio": [0.0] * 6,
            "verdict": ["pass" if p <= 250 else "fail" for p in p95],
        }
    )


@pytest.fixture
def searched(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """Each size's search: a step test around X(N) (+3% on a replicate) and the search's own recommendation."""
    calls: dict[str, Any] = {"runs": [], "recs": {}}

    def fake(exp: Any, *, options: SearchOptions, console: Any) -> RunSummary:
        n = exp.cluster.app_tasks
        bump = 1.03 if options.run_id and options.run_id.endswith("-r2") else 1.0
        stages = _stages(usl_rps(n, LAM, SIGMA, KAPPA) * bump)
        a = analyse_run(stages, None, exp.guards, n_boot=0)
        rec = recommend(a, stages, exp.cluster, exp.production, exp.workload).to_dict()
        calls["runs"].append(options.run_id)
        calls["recs"][options.run_id] = rec
        return RunSummary(
            run_id=options.run_id or "",
            results_dir=str(options.results_root / (options.run_id or "")),
            experiment=exp.name,
            target="t",
            stopped_reason="resolution",
            saturation_rps=a.saturation.value,
            slo_capacity_rps=a.slo_capacity.value,
            estimates={"saturation": a.saturation, "slo_capacity": a.slo_capacity},
            recommendation=rec,
        )

    monkeypatch.setattr(scale, "run_search", fake)
    return calls


def _scale(tmp_path: Path, sizes: list[int], repeat: int = 1) -> dict[str, Any]:
    exp = make_experiment(builtin=True)
    options = ScaleOptions(sizes=sizes, search=SearchOptions(results_root=tmp_path, json_mode=True), repeat=repeat)
    return run_scale(exp, options, console=Console(quiet=True), control=SandboxControl()).to_json()


def test_one_size_gives_the_search_answer(tmp_path: Path, searched: dict[str, Any]) -> None:
    data = _scale(tmp_path, [2])  # [cluster] app_tasks = 2 in the built-in experiment
    (run_id,) = searched["runs"]
    search = searched["recs"][run_id]
    rec = data["recommendation"]
    assert rec["app_tasks"] == search["app_tasks"] and rec["app_tasks_range"] == search["app_tasks_range"]
    assert rec["sidekiq_tasks"] == search["sidekiq_tasks"]
    assert rec["app_tasks_curve"] == rec["app_tasks_linear"] == search["app_tasks"]
    assert data["sizes"][0]["capacity_rps"] == pytest.approx(search["inputs"]["capacity_rps"])  # X(N) = SLO capacity


def test_three_sizes_exact_four_sizes_leave_one_out(tmp_path: Path, searched: dict[str, Any]) -> None:
    three = _scale(tmp_path / "3", [1, 2, 4])
    assert "exact and uncheckable" in three["fit_check"] and three["leave_one_out"] == []
    four = _scale(tmp_path / "4", [1, 2, 3, 4])
    loo = four["leave_one_out"]
    assert [r["app_tasks"] for r in loo] == [1, 2, 3, 4]
    assert all(abs(r["error_pct"]) < 3.0 for r in loo), loo  # the sizes lie on one USL
    assert four["fit_check"].startswith("leave-one-out: worst error")
    rec = four["recommendation"]
    assert rec["extrapolation"]["largest_measured_tasks"] == 4
    assert rec["app_tasks_range"][0] <= rec["app_tasks"] <= rec["app_tasks_range"][1]


def test_repeat_stores_replicates_and_they_enter_the_fit(tmp_path: Path, searched: dict[str, Any]) -> None:
    data = _scale(tmp_path, [1, 2, 3], repeat=2)
    assert [s["app_tasks"] for s in data["sizes"]] == [1, 1, 2, 2, 3, 3]
    assert [s["replicate"] for s in data["sizes"]] == [0, 1, 0, 1, 0, 1]
    assert searched["runs"][1].endswith("-n1-r2")
    assert "exact" not in " ".join(data["fit"]["notes"])  # 6 points for 3 parameters: the scatter is measured
    lo, hi = data["fit"]["intervals"]["lambda"]
    assert lo < data["fit"]["lambda"] < hi
