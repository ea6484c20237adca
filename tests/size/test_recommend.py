"""Sizing arithmetic against hand-computed answers; every figure names its inputs."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from capacity.analyze import analyse_run
from capacity.core.errors import CapacityError
from capacity.plan.experiment import Cluster, Endpoint, Production, Scenario, Workload
from capacity.size import SizingAsk, recommend, round_to_zones

PEAK_RPM = {"demographics_status": 7839, "appointment_summary": 588, "appointment_checkin": 588}
SAT = SizingAsk(signal="saturation")
"""Size from measured saturation."""


def _stages(cpu: bool = False, jobs: bool = False, mem: bool = False) -> pd.DataFrame:
    rates = [20.0, 40.0, 60.0, 80.0, 100.0, 120.0]
    achieved = [20.0, 40.0, 60.0, 80.0, 100.0, 100.0]  # saturates at 100 rps on 2 tasks
    frame = pd.DataFrame(
        {
            "target_rps": rates,
            "offered_rps": rates,
            "achieved_rps": achieved,
            "p95_ms": [50, 52, 55, 70, 200, 2000],
            "error_ratio": [0, 0, 0, 0, 0, 0.17],
            "verdict": ["pass"] * 4 + ["fail", "fail"],
        }
    )
    if cpu:
        frame["m_cpu_pct"] = [10 + 0.5 * a for a in achieved]  # 60% at 100 rps cluster-wide
    if jobs:
        frame["m_jobs_per_s"] = [0.2 * a for a in achieved]
        frame["m_queue_growth_per_s"] = [0, 0, 0, 0, 2.0, 5.0]
    if mem:
        frame["m_mem_mb_max"] = [600, 620, 650, 700, 760, 790]
    return frame


def test_round_to_zones_and_n_plus_one() -> None:
    assert round_to_zones(5.01, 3, n_plus_one=False) == 6
    assert round_to_zones(5.01, 3, n_plus_one=True) == 9  # 6 needed + 1 spare -> 7 -> 9 (3 per zone)
    assert round_to_zones(4.0, 3, n_plus_one=True) == 6  # 4 + 1 = 5 -> 6: the spare fits in the rounding
    assert round_to_zones(0.2, 2, n_plus_one=False, min_tasks=2) == 2


def test_app_tasks_from_the_seed_peak() -> None:
    stages = _stages()
    analysis = analyse_run(stages, n_boot=0)
    production = Production(peak_rpm=PEAK_RPM, growth=1.0, throughput_headroom=0.2, zones=3, n_plus_one=False)
    rec = recommend(analysis, stages, Cluster(app_tasks=2), production, ask=SAT)
    peak = sum(PEAK_RPM.values()) / 60
    assert rec.peak_rps == pytest.approx(peak)
    assert rec.per_task_rps == pytest.approx(50.0)
    raw = peak * 1.2 / 50.0  # the throughput headroom on req/s; the CPU target is not applied to it
    assert rec.figures["raw_tasks_capacity"] == pytest.approx(raw)
    assert rec.app_tasks == 3 * math.ceil(math.ceil(raw) / 3)
    assert rec.expected_utilisation == pytest.approx(peak / (rec.app_tasks * 50.0))
    assert rec.inputs["capacity_signal"] == "saturation" and rec.inputs["staging_app_tasks"] == 2
    assert list(rec.scenarios) == ["1x peak"]  # no built-in scenarios: only what the file names (issue 14)


def test_default_signal_is_slo_capacity_and_growth_applies() -> None:
    stages = _stages()
    analysis = analyse_run(stages, n_boot=0)
    rec = recommend(analysis, stages, Cluster(app_tasks=2), Production(peak_rpm=PEAK_RPM, growth=1.5))
    assert rec.inputs["capacity_signal"] == "slo_capacity"
    assert rec.figures["demand_rps"] == pytest.approx(1.5 * sum(PEAK_RPM.values()) / 60)


def test_cpu_binds_when_it_reaches_the_autoscaling_point_first() -> None:
    stages = _stages(cpu=True)
    stages["m_cpu_pct"] = [10 + 1.0 * a for a in stages.achieved_rps]  # 60% at 50 rps cluster-wide
    analysis = analyse_run(stages, n_boot=0)
    rec = recommend(
        analysis,
        stages,
        Cluster(app_tasks=2),
        Production(peak_rpm=PEAK_RPM, n_plus_one=False),
        ask=SAT,
    )
    assert rec.figures["cpu_per_task_rps_at_target"] == pytest.approx(25.0)
    assert rec.figures["binding_constraint"] == "cpu" and "CPU" in rec.binding_constraint
    assert rec.figures["raw_tasks_cpu"] == pytest.approx(sum(PEAK_RPM.values()) / 60 / 25.0)


def test_sidekiq_from_jobs_per_request_and_drain_rate() -> None:
    stages = _stages(jobs=True, mem=True)
    analysis = analyse_run(stages, n_boot=0)
    cluster = Cluster(app_tasks=2, sidekiq_tasks=1)
    rec = recommend(
        analysis,
        stages,
        cluster,
        Production(peak_rpm=PEAK_RPM, zones=2, n_plus_one=False),
        ask=SAT,
    )
    assert rec.figures["jobs_per_request"] == pytest.approx(0.2)
    assert rec.figures["drain_jobs_per_s_per_task"] == pytest.approx(20.0)  # 20 jobs/s while the queue grew
    jobs = 0.2 * sum(PEAK_RPM.values()) / 60
    assert rec.sidekiq_tasks == 2 * math.ceil(max(math.ceil(jobs * 1.2 / 20.0), 2) / 2)
    assert rec.mem_mib_per_task == 1024  # 790 MiB x 1.25 = 987.5 -> next 256 MiB step


def test_workload_rpm_and_enqueues_when_no_metrics() -> None:
    stages = _stages()
    workload = Workload(
        endpoints=[
            Endpoint(name="a", path="/a", rpm=600, enqueues_jobs=1.0),
            Endpoint(name="b", path="/b", rpm=600),
        ]
    )
    rec = recommend(
        analyse_run(stages, n_boot=0),
        stages,
        Cluster(app_tasks=2),
        Production(),
        workload,
        ask=SAT,
    )
    assert rec.peak_rps == pytest.approx(20.0)
    assert rec.figures["jobs_per_request"] == pytest.approx(0.5)
    assert rec.mem_mib_per_task is None


def test_named_scenario_and_errors() -> None:
    stages = _stages()
    analysis = analyse_run(stages, n_boot=0)
    production = Production(scenarios=[Scenario(name="double", rps=300.0)])
    rec = recommend(
        analysis, stages, Cluster(app_tasks=2), production, ask=SizingAsk(scenario="double", signal="saturation")
    )
    assert rec.peak_rps == 300.0 and rec.inputs["scenario"] == "double"
    with pytest.raises(CapacityError, match="no production peak"):
        recommend(analysis, stages, Cluster(app_tasks=2), Production())
    with pytest.raises(CapacityError, match="unknown scenario"):
        recommend(analysis, stages, Cluster(app_tasks=2), production, ask=SizingAsk(scenario="nope"))
    thin = pd.DataFrame({"target_rps": [1.0], "achieved_rps": [1.0]})
    with pytest.raises(CapacityError, match="insufficient data"):
        recommend(analyse_run(thin, n_boot=0), thin, Cluster(), Production(peak_rpm=PEAK_RPM))


def test_not_reached_capacity_is_flagged() -> None:
    stages = _stages().iloc[:4]
    rec = recommend(analyse_run(stages, n_boot=0), stages, Cluster(app_tasks=2), Production(peak_rpm=PEAK_RPM))
    assert not rec.inputs["capacity_reached"]
    assert any("lower bound" in n for n in rec.notes)


def test_range_spans_the_search_bracket_not_only_the_bootstrap() -> None:
    """Passing at 80 req/s, failing at 100 (where goodput saturates): the range covers [80, 100]."""
    stages = _stages()
    analysis = analyse_run(stages, n_boot=0)
    production = Production(peak_rpm={"mix": 60 * 100.0}, zones=1, n_plus_one=False, min_tasks=1)
    rec = recommend(analysis, stages, Cluster(app_tasks=2), production)
    assert rec.inputs["capacity_signal"] == "slo_capacity"
    lo, hi = rec.figures["capacity_range_rps"]
    assert lo == pytest.approx(80.0) and hi == pytest.approx(100.0)
    assert rec.app_tasks_range == [math.ceil(120 / 50 - 1e-9), math.ceil(120 / 40 - 1e-9)]  # demand 100 x 1.2
    assert rec.app_tasks_range[0] <= rec.app_tasks <= rec.app_tasks_range[1]
    assert "bracket [80, 100]" in rec.figures["app_tasks_range_from"]
