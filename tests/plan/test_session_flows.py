"""Session keys of ``[[workload.flows]]`` and ``[guards.flows.NAME]`` (issue 24): validated naming the key,
judged like the other guards, stored as ``flows.parquet``."""

from __future__ import annotations

from typing import Any

import pytest

from capacity.core.errors import ExperimentError
from capacity.core.models import FlowStats
from capacity.judge.guards import judge_flows
from capacity.plan.budget import record_budget
from capacity.plan.experiment import parse_experiment
from capacity.store.tables import FLOW_COLUMNS, flow_table
from tests.helpers import make_stage_result


def base() -> dict[str, Any]:
    return {
        "name": "t",
        "target": {"base_url": "http://127.0.0.1:8080"},
        "workload": {
            "endpoints": [
                {"name": "read", "path": "/p/{dfn}"},
                {"name": "summary", "method": "POST", "path": "/a/{ien}/s", "body": '{"p": "{patient}"}'},
                {"name": "checkin", "method": "POST", "path": "/a/{ien}/c", "consumes": True},
            ],
            "flows": [
                {
                    "name": "visit",
                    "per_hour": 6000,
                    "steps": [
                        {"endpoint": "read", "extract": {"patient": "$.data.id"}},
                        {"endpoint": "summary", "think_s": {"uniform": [1, 3]}},
                        {"endpoint": "checkin", "think_s": 2},
                    ],
                }
            ],
            "test_data": {"source": "sandbox", "records": 1000},
        },
        "guards": {"flows": {"visit": {"max_session_p95_s": 10, "max_failed_ratio": 0.02}}},
        "metrics": {"source": "none"},
    }


def test_session_flow_parses_with_think_times_extracts_and_its_guard() -> None:
    exp = parse_experiment(base(), source="x.toml")
    [flow] = exp.workload.flows
    assert flow.mode == "session" and exp.workload.sessions == [flow]
    assert flow.mean_think_s == pytest.approx(4.0)  # 2 (uniform 1-3) + 2
    assert exp.guards.flows["visit"].max_failed_ratio == 0.02


def test_a_consuming_session_uses_one_record_however_many_calls_consume() -> None:
    d = base()
    d["workload"]["endpoints"][1]["consumes"] = True  # the summary consumes too: still one record a session
    exp = parse_experiment(d, source="x.toml")
    assert exp.workload.consuming_share == pytest.approx(1 / 3)  # 100 sessions/min, 300 requests/min
    d["workload"]["flows"][0]["mode"] = "mix"
    del d["workload"]["flows"][0]["steps"][0]["extract"]
    d["workload"]["endpoints"][1]["body"] = None
    del d["guards"]
    mixed = parse_experiment(d, source="x.toml")
    assert mixed.workload.consuming_share == pytest.approx(2 / 3)  # as independent requests, each consumes
    assert record_budget(exp, available=10**9).needed < record_budget(mixed, available=10**9).needed


@pytest.mark.parametrize(
    ("change", "key", "word"),
    [
        (lambda d: d["workload"]["flows"][0]["steps"][0].update(extract={}), "workload", "no earlier step"),
        (lambda d: d["workload"]["flows"][0].update(mode="mix"), "workload", 'needs mode = "session"'),
        (lambda d: d["workload"]["flows"][0].update(mode="batch"), "workload.flows.0.mode", "session"),
        (
            lambda d: d["workload"]["flows"][0]["steps"][0].update(extract={"patient": "data.id"}),
            "workload.flows.0.steps.0.extract",
            "starts with '$'",
        ),
        (
            lambda d: d["workload"]["flows"][0]["steps"][1].update(think_s={"uniform": [3, 1]}),
            "workload.flows.0.steps.1.think_s",
            "lo <= hi",
        ),
        (
            lambda d: d["workload"]["flows"][0]["steps"][1].update(think_s=-1),
            "workload.flows.0.steps.1.think_s.fixed",
            "greater than or equal",
        ),
        (
            lambda d: d["workload"]["endpoints"].append({"name": "x", "path": "/x/{patient}", "rpm": 5}),
            "workload",
            "endpoint 'x' uses {patient}",
        ),
        (lambda d: d["guards"]["flows"].update(vist={}), "guards.flows.vist", "no flow named 'vist'"),
        (
            lambda d: d["guards"]["flows"]["visit"].update(max_failed_ratio=2),
            "guards.flows.visit.max_failed_ratio",
            "less than or equal",
        ),
    ],
)
def test_session_keys_are_validated_naming_the_key(change: Any, key: str, word: str) -> None:
    d = base()
    change(d)
    with pytest.raises(ExperimentError) as ei:
        parse_experiment(d, source="x.toml")
    msg = str(ei.value)
    assert msg.startswith(f"x.toml, key '{key}'"), msg
    assert word in msg, msg


def test_flow_guard_breaches_name_the_flow() -> None:
    exp = parse_experiment(base(), source="x.toml")
    ok = FlowStats(started=100, completed=99, failed=1, p95_s=8.0)
    assert judge_flows({"visit": ok}, exp.guards) == []
    slow = FlowStats(started=100, completed=90, failed=10, failed_at_step={"3": 10}, p95_s=12.5)
    [p95, failed] = judge_flows({"visit": slow}, exp.guards)
    assert (p95.code, p95.scope, p95.value, p95.limit) == ("session-p95", "visit", 12.5, 10)
    assert (failed.code, failed.scope, failed.value) == ("session-failed", "visit", pytest.approx(0.1))
    assert failed.text == "visit: 10.00% of sessions failed > 2.00%"
    # unfinished sessions (running at the stage's end) are neither failures nor completions
    assert judge_flows({"visit": FlowStats(started=50, unfinished=50)}, exp.guards) == []


def test_flow_table_has_one_row_per_stage_and_flow() -> None:
    stats = FlowStats(started=10, completed=8, failed=2, failed_at_step={"2": 1, "3": 1}, p50_s=2.0, p95_s=3.5)
    r = make_stage_result(
        index=4,
        target_rps=10,
        p50_ms=1,
        p95_ms=2,
        p99_ms=3,
        flows={"visit": stats},
    )
    t = flow_table([r])
    assert list(t.columns) == FLOW_COLUMNS
    row = t.iloc[0]
    assert (row["stage"], row["flow"], row["failed"], row["failed_at_step"]) == (4, "visit", 2, "2:1, 3:1")
