"""Scenarios in the seed's terms (issue 14 item 5): flows with hourly volumes or multipliers, sized from
each endpoint's measured cost; the unmodelled share and growth are separate factors."""

from __future__ import annotations

import pandas as pd
import pytest

from capacity.analyze import analyse_run
from capacity.plan.experiment import Cluster, load_experiment
from capacity.size import SizingAsk, recommend
from capacity.size.scenarios import EQUAL_COST, demand_rps, endpoint_costs
from tests.conftest import REPO
from tests.helpers import make_experiment

SAT = SizingAsk(signal="saturation")
"""Size from measured saturation."""


def _stages() -> pd.DataFrame:
    rates = [20.0, 40.0, 60.0, 80.0, 100.0, 120.0]
    return pd.DataFrame(
        {
            "index": range(6),
            "target_rps": rates,
            "offered_rps": rates,
            "achieved_rps": [20.0, 40.0, 60.0, 80.0, 100.0, 100.0],
            "p95_ms": [50, 52, 55, 70, 200, 2000],
            "error_ratio": [0, 0, 0, 0, 0, 0.17],
            "verdict": ["pass"] * 4 + ["fail", "fail"],
        }
    )


def _exp(**production: object):  # type: ignore[no-untyped-def]
    return make_experiment(
        name="s",
        target={"base_url": "http://127.0.0.1:1"},
        workload={
            "endpoints": [
                {"name": "cheap", "path": "/c"},
                {"name": "dear", "method": "POST", "path": "/d"},
            ],
            "flows": [
                {"name": "browse", "per_hour": 6000, "steps": [{"endpoint": "cheap", "count": 3}]},
                {"name": "buy", "per_hour": 6000, "steps": [{"endpoint": "dear"}]},
            ],
        },
        production={
            "target_utilisation": 0.5,
            "zones": 1,
            "n_plus_one": False,
            "min_tasks": 1,
            "scenarios": [
                {"name": "browse only", "flows": {"browse": {"per_hour": 6000}}},
                {"name": "buy burst", "flows": {"buy": {"multiplier": 3}}},
            ],
            **production,
        },
        source="s.toml",
    )


def test_costs_from_per_endpoint_latency_make_the_run_mix_cost_one() -> None:
    exp = _exp()
    # 1x: cheap 300/min (3 per browse x 100/min), dear 100/min -> weights 3:1
    ep = pd.DataFrame({"stage": [0, 0], "endpoint": ["cheap", "dear"], "requests": [300, 100], "p50_ms": [10.0, 50.0]})
    costs, source = endpoint_costs(exp.workload, _stages(), ep)
    mean = (3 * 10 + 1 * 50) / 4
    assert costs == pytest.approx({"cheap": 10 / mean, "dear": 50 / mean})
    assert demand_rps({"cheap": 300, "dear": 100}, costs) == pytest.approx(400 / 60)  # the run's own mix: 1 each
    assert "lowest passing stage (20 req/s)" in source
    assert endpoint_costs(exp.workload, _stages(), None) == ({"cheap": 1.0, "dear": 1.0}, EQUAL_COST)


def test_scenarios_are_sized_from_endpoint_cost_with_unmodelled_share_and_growth_apart() -> None:
    exp = _exp(unmodelled_share=0.25, growth=2.0)
    stages = _stages()
    ep = pd.DataFrame({"stage": [0, 0], "endpoint": ["cheap", "dear"], "requests": [300, 100], "p50_ms": [10.0, 50.0]})
    analysis = analyse_run(stages, n_boot=0)
    rec = recommend(analysis, stages, Cluster(app_tasks=2), exp.production, exp.workload, ask=SAT, endpoints=ep)
    mean = 20.0
    browse = rec.scenarios["browse only"]
    assert browse["rps"] == pytest.approx(5.0)  # 300 cheap calls/min
    assert browse["peak_rps"] == pytest.approx(5.0 * 10 / mean)  # cheap calls cost half the mix's mean
    assert browse["demand_rps"] == pytest.approx(browse["peak_rps"] * 1.25 * 2.0)
    burst = rec.scenarios["buy burst"]
    assert burst["rps"] == pytest.approx(5.0) and burst["peak_rps"] == pytest.approx(5.0 * 50 / mean)
    assert burst["demand_rps"] == pytest.approx(5 * browse["demand_rps"])  # same request count, five times the cost
    assert rec.inputs["unmodelled_share"] == 0.25 and rec.inputs["growth"] == 2.0
    assert rec.figures["endpoint_cost"]["dear"] == pytest.approx(2.5)


def test_staging_scenarios_size_without_built_in_tps_scenarios() -> None:
    exp = load_experiment(REPO / "experiments" / "clinician-workflow-staging.toml")
    stages = _stages()
    analysis = analyse_run(stages, n_boot=0)
    rec = recommend(analysis, stages, exp.cluster, exp.production, exp.workload, ask=SAT)
    assert list(rec.scenarios) == [
        "1x peak",
        "check-in peak",
        "pre-check-in reminders",
        "reminder burst during check-in peak",
    ]
    assert rec.scenarios["1x peak"]["rps"] == pytest.approx(9015 / 60)
    assert rec.scenarios["check-in peak"]["rps"] == pytest.approx(3 * 588 / 60)
