"""Issue 20's worked example: SLO capacity 120 req/s on 2 tasks, best goodput 150 req/s, 85% CPU at 120.

Production: peak 180 req/s, unmodelled share 0.2, growth 1, 3 zones, N+1, CPU target 60%.

Before the one rule set, by the old formulas (kept here as arithmetic):
  search:  ceil(180 x 1.2 / (60 x 0.6)) = 6, +1 = 7 -> 9 tasks  (a CPU target dividing req/s)
  scale:   ceil(180 / (75 x 0.6)) = 4, +1 = 5 -> 6 tasks        (best goodput, no unmodelled share)
After: both go through ``capacity.size.rules`` and say the same thing, with the reason: throughput
needs 216 x 1.2 / 60 = 4.32 tasks, CPU 216 / 41.25 = 5.24 (60% CPU at 82.5 req/s on 2 tasks), CPU
binds -> 6 -> N+1 -> 9 tasks. Without the CPU line the answer is 6, from throughput.
"""

from __future__ import annotations

import dataclasses
import math

import pandas as pd
import pytest

from capacity.analyze import analyse_run
from capacity.core.models import Estimate
from capacity.plan.experiment import Cluster, Guards, Production, parse_experiment
from capacity.search.scale import ScaleOutcome, SizeResult, _recommend
from capacity.size import recommend
from capacity.size.curve import SizePoint, fit_curve

PRODUCTION = Production(peak_rpm={"mix": 180.0 * 60}, unmodelled_share=0.2, growth=1.0, zones=3, cpu_target=0.6)


def _stages(cpu: bool) -> pd.DataFrame:
    x = [40.0, 80.0, 120.0, 140.0, 160.0]
    good = [40.0, 80.0, 120.0, 140.0, 150.0]  # best goodput 150 req/s, at a failing stage
    frame = pd.DataFrame(
        {
            "index": range(5),
            "target_rps": x,
            "offered_rps": x,
            "achieved_rps": good,
            "p95_ms": [50.0, 60.0, 100.0, 900.0, 2000.0],
            "error_ratio": [0.0, 0.0, 0.0, 0.0, 0.06],
            "verdict": ["pass", "pass", "pass", "fail", "fail"],
        }
    )
    if cpu:
        frame["m_cpu_pct"] = [5.0 + g * 80.0 / 120.0 for g in good]  # 85% at 120 req/s, 60% at 82.5
    return frame


def _search(cpu: bool) -> dict:  # type: ignore[type-arg]
    frame = _stages(cpu)
    a = analyse_run(frame, None, Guards(slo_p95_ms=500.0), n_boot=0)  # type: ignore[call-arg]
    a = dataclasses.replace(a, slo_capacity=Estimate(value=120.0, lo=114.0, hi=126.0, signal="p95_ms"))
    return recommend(a, frame, Cluster(app_tasks=2), PRODUCTION).to_dict()


def _scale(search: dict) -> dict:  # type: ignore[type-arg]
    """``capacity scale --sizes 2`` on the same stages: the path ``run_scale`` takes after the search."""
    exp = parse_experiment(
        {
            "name": "worked",
            "target": {"base_url": "http://127.0.0.1:1"},
            "workload": {"endpoints": [{"name": "mix", "path": "/"}]},
            "cluster": {"app_tasks": 2},
            "production": PRODUCTION.model_dump(exclude_none=True),
        },
        source="worked.toml",
    )
    size = SizeResult(2, "r", capacity_rps=120.0, capacity_interval=[114.0, 126.0], recommendation=search)
    size.throughput_rps = 150.0
    out = ScaleOutcome("s", path=None, experiment="worked", control="sandbox", sizes=[size])  # type: ignore[arg-type]
    out.fit = fit_curve([SizePoint(2, 120.0, 114.0, 126.0)])
    _recommend(exp, out, [size], [SizePoint(2, 120.0, 114.0, 126.0)])
    assert out.recommendation is not None
    return out.recommendation


def test_before_the_two_paths_disagreed() -> None:
    def old_round(raw: float) -> int:
        return 3 * math.ceil((math.ceil(raw) + 1) / 3)

    assert old_round(180 * 1.2 / (60 * 0.6)) == 9  # search: SLO capacity, x (1 + 0.2), / 0.6
    assert old_round(180 / (75 * 0.6)) == 6  # scale: best goodput 150 / 2, no unmodelled share, / 0.6


def test_after_search_and_one_size_scale_agree_with_the_reason_shown() -> None:
    search = _search(cpu=True)
    scale = _scale(search)
    assert search["app_tasks"] == scale["app_tasks"] == 9
    assert search["figures"]["demand_rps"] == pytest.approx(216.0)
    assert search["figures"]["raw_tasks_capacity"] == pytest.approx(216 * 1.2 / 60)
    assert search["figures"]["raw_tasks_cpu"] == pytest.approx(216 / 41.25)
    assert search["figures"]["binding_constraint"] == "cpu"
    assert search["expected_cpu_utilisation"] == pytest.approx((5 + 80 / 120 * 216 / 9 * 2) / 100)
    steps = [s["step"] for s in search["chain"]]
    assert steps == [
        "demand",
        "per-task capacity",
        "tasks by throughput",
        "tasks by CPU",
        "tasks by memory",
        "binding rule",
        "zones",
        "N+1",
        "sidekiq tasks",
    ]
    assert search["app_tasks_range"] == scale["app_tasks_range"] == [9, 9]  # CPU binds over the whole interval
    assert search["extrapolation"] == {"largest_measured_tasks": 2, "ratio": 4.5, "extrapolated": True}
    per_task = search["chain"][1]
    assert (
        per_task["value"] == 60.0
        and "between stage 2 (pass, 120 req/s) and stage 3 (fail, 140 req/s)" in (per_task["source"])
    )


def test_after_without_cpu_throughput_binds_for_both() -> None:
    search = _search(cpu=False)
    scale = _scale(search)
    assert search["app_tasks"] == scale["app_tasks"] == 6  # 216 x 1.2 / 60 = 4.32 -> 5 -> 6 (the spare fits)
    assert search["app_tasks_range"] == scale["app_tasks_range"] == [6, 6]
    assert scale["app_tasks_linear"] == 6 and scale["app_tasks_curve"] == 6 and scale["binding"] == "both"
