"""``capacity failover``'s plan: which tasks a flag allows stopping, the timeline, the periods' figures,
the per-task capacity read from a run, and one line with exit 2 for bad input (no load is sent)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from hdrh.histogram import HdrHistogram

from capacity.analyze.failover import SegmentSpan, assign_periods, contract_periods, per_task_load, period_figures
from capacity.cluster.ecs_tasks import ServiceTask
from capacity.core.errors import CapacityError, ExperimentError
from capacity.search.failover_plan import FailoverPlan, allowed_losses, choose_victims, per_task_capacity
from tests.conftest import Cli, run_cli
from tests.helpers import write_experiment


def tasks(*zones: str | None) -> list[ServiceTask]:
    return [ServiceTask(f"arn:task/{i}", z) for i, z in enumerate(zones)]


def test_lose_one_stops_exactly_one_and_zone_stops_the_fullest_zone() -> None:
    assert [t.arn for t in choose_victims(tasks("a", "b", "c"), "1", 3)] == ["arn:task/0"]
    six = tasks("a", "b", "c", "a", "b", "c")
    assert {t.zone for t in choose_victims(six, "zone", 3)} == {"a"}
    assert len(choose_victims(six, "zone", 3)) == 2 == allowed_losses(6, "zone", 3)
    assert len(choose_victims(tasks(None, None, None), "zone", 2)) == 2  # no zones known: ceil(3 / 2)
    assert choose_victims([ServiceTask("new", serving=False), *tasks("a", "b")], "1", 2)[0].arn == "arn:task/0"


@pytest.mark.parametrize(
    ("pool", "lose", "zones", "match"),
    [
        (tasks("a", "a", "a", "b"), "zone", 2, "holds 3 of 4 app tasks, more than --lose zone allows \\(2"),
        (tasks(None, None, None), "zone", 1, "would stop all 3 app tasks"),
        (tasks("a"), "1", 3, "1 serving app task"),
    ],
)
def test_refuses_to_stop_more_than_the_flag_allows(pool: list[ServiceTask], lose: Any, zones: int, match: str) -> None:
    with pytest.raises(CapacityError, match=match):
        choose_victims(pool, lose, zones)


def test_plan_puts_the_loss_on_a_segment_boundary_and_bounds_the_worst_case() -> None:
    p = FailoverPlan(100.0, "--rps 100", duration_s=600, loss_at_s=200, segment_s=30, deadline_s=300)
    assert p.loss_segment == 7 and p.as_dict()["loss_at_s"] == 210
    assert p.planned_segments == 20
    assert p.worst_case_s == max(600, 210 + 300 + 30) == 600
    assert FailoverPlan(1, "", duration_s=60, loss_at_s=20, segment_s=10, deadline_s=300).worst_case_s == 330
    with pytest.raises(ExperimentError, match="--loss-at"):
        FailoverPlan(1, "", duration_s=60, loss_at_s=60, segment_s=10)
    with pytest.raises(ExperimentError, match="no segment before"):
        FailoverPlan(1, "", duration_s=60, loss_at_s=2, segment_s=10)


def test_per_task_capacity_from_the_recommendation_or_its_inputs() -> None:
    rec = {"per_task_rps": 42.5, "figures": {"per_task_rps_formula": "slo_capacity 85 rps / 2 tasks"}}
    assert per_task_capacity({"recommendation": rec}) == (42.5, "slo_capacity 85 rps / 2 tasks")
    inputs = {"capacity_signal": "slo_capacity", "capacity_rps": 90.0, "staging_app_tasks": 3}
    value, how = per_task_capacity({"recommendation": {"inputs": inputs}})
    assert value == pytest.approx(30.0) and "90 rps / 3 tasks" in how
    assert per_task_capacity({"recommendation": None})[0] is None and per_task_capacity(None)[0] is None


def _seconds(stage: int, t0: float, n: int, ok: int, errors: int = 0, dropped: int = 0) -> list[dict[str, Any]]:
    return [
        {
            "stage": stage,
            "t": t0 + k,
            "phase": "measure",
            "offered": ok + errors + dropped,
            "ok": ok,
            "errors": errors,
            "dropped": dropped,
        }
        for k in range(n)
    ]


def _hist(ms: list[float]) -> HdrHistogram:
    h = HdrHistogram(1, 3_600_000_000, 3)
    for v in ms:
        h.record_value(int(v * 1000))
    return h


def test_periods_are_whole_segments_and_their_figures_add_up() -> None:
    spans = [SegmentSpan(0, 0, 10), SegmentSpan(1, 10, 20), SegmentSpan(2, 20, 30), SegmentSpan(3, 30, 40)]
    periods = assign_periods(spans, lost_at=10.0, back_at=24.0)
    assert periods == {0: "before", 1: "during", 2: "during", 3: "after"}
    assert set(assign_periods(spans, None, None).values()) == {"before"}
    assert assign_periods(spans, 10.0, None)[3] == "during"
    rows = _seconds(0, 0, 10, 100) + _seconds(1, 10, 10, 80, errors=20) + _seconds(2, 20, 10, 90, dropped=10)
    rows += _seconds(3, 30, 10, 100)
    hists = {0: _hist([10.0] * 99 + [50.0]), 1: _hist([100.0] * 50), 2: _hist([300.0] * 50), 3: _hist([20.0])}
    metrics = pd.DataFrame(
        [
            {"stage": 1, "metric": "cpu_pct", "group": "task_arn:a", "t": 11.0, "value": 60.0},
            {"stage": 2, "metric": "cpu_pct", "group": "task_arn:a", "t": 21.0, "value": 80.0},
            {"stage": 2, "metric": "pool_capacity", "group": "task_arn:a", "t": 21.0, "value": 0.5},
        ]
    )
    fig = period_figures(pd.DataFrame(rows), metrics, hists, periods, lost_at=10.0)
    during = fig["during"]
    assert during is not None
    assert during["goodput_rps"] == pytest.approx(85.0) and during["dropped"] == 100
    assert during["error_ratio"] == pytest.approx(200 / (1700 + 200))
    assert during["p95_ms"] == pytest.approx(300.0, rel=0.01)  # the merged histogram, not a mean of two
    assert during["cpu_pct_max_task"] == pytest.approx(70.0) and during["pool_free_min"] == 0.5
    assert (during["from_s"], during["to_s"]) == (0.0, 20.0)
    assert fig["before"] is not None and fig["before"]["p99_ms"] == pytest.approx(10.0, rel=0.01)
    contract = contract_periods(fig)
    assert set(contract) == {"before", "during", "after"}
    assert all(set(v) == {"goodput_rps", "p95_ms", "p99_ms", "error_ratio", "dropped"} for v in contract.values())
    assert contract_periods({"before": fig["before"]})["after"]["goodput_rps"] is None
    load = per_task_load(during, surviving=2, capacity_rps=50.0)
    assert load["offered_rps_per_task"] == pytest.approx(50.0) and load["headroom_rps_per_task"] == pytest.approx(0.0)


def three_task_experiment(tmp_path: Path, zones: int = 2) -> Path:
    three = {"app_tasks": 3}
    return write_experiment(
        tmp_path / "three.toml", builtin=True, sandbox=three, cluster=three, production={"zones": zones}
    )


def test_dry_run_lists_the_tasks_the_calls_and_the_worst_case(tmp_path: Path, cli: Cli) -> None:
    exp = str(three_task_experiment(tmp_path))
    args = ["--rps", "90", "--duration", "60s", "--segment-seconds", "10", "--deadline", "2m", "--dry-run"]
    cp = cli("failover", exp, *args, "--lose", "zone", "--json")
    assert cp.returncode == 0, cp.stderr
    plan = json.loads(cp.stdout)
    assert len(plan["would_stop"]) == plan["allowed"] == 2 and plan["serving_tasks"] == 3  # ceil(3 / 2 zones)
    assert plan["worst_case_s"] == 20 + 120 + 10
    assert sum("/_sandbox/tasks/stop" in c for c in plan["calls"]) == 2
    assert not (tmp_path / "results").exists()
    text = cli("failover", exp, *args)
    assert text.returncode == 0 and "stops 1 of 3 app tasks" in text.stdout and "worst case: 150 s" in text.stdout


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (["--rps", "90", "--lose", "2"], "--lose '2'"),
        (["--rps", "90", "--duration", "60s", "--loss-at", "90s"], "--loss-at 90 s must fall inside"),
        (["--rps", "90", "--deadline", "soon"], "--deadline 'soon'"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tmp_path: Path, args: list[str], match: str, cli: Cli) -> None:
    cp = cli("failover", *args, "--dry-run", "--out", str(tmp_path))
    assert cp.returncode == 2 and match in cp.stderr and "Traceback" not in cp.stderr
    assert len(cp.stderr.strip().splitlines()) == 1


def test_zone_loss_that_would_stop_every_task_is_refused_before_any_load(tmp_path: Path) -> None:
    exp = str(three_task_experiment(tmp_path, zones=1))
    cp = run_cli("failover", exp, "--rps", "90", "--lose", "zone", "--duration", "30s", "--out", str(tmp_path / "r"))
    assert cp.returncode == 2 and "refusing" in cp.stderr and "would stop all 3" in cp.stderr
    assert not (tmp_path / "r").exists()
