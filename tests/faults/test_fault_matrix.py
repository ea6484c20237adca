"""The fault matrix (issue 21), each fault a short real search on loopback: the tool survives, says what
happened, and loses no finished stage. ``benchmarks/bench_faults.py`` prints the same runs as a table."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.faults.matrix import run_fault

pytestmark = pytest.mark.slow


def test_a_steady_background_queue_no_longer_stops_the_search(tmp_path: Path) -> None:
    r = run_fault("steady_queue", tmp_path)
    print("\n" + r.line())
    assert r.survived and r.stages_lost == 0, r.run.stderr[-2000:]
    assert r.stopped_reason == "max_rps" and r.verdicts == ["pass", "pass", "pass"]
    assert r.notes == ["baseline queue 10.0"]


def test_points_90_s_late_are_judged_again_when_they_arrive(tmp_path: Path) -> None:
    r = run_fault("late_points", tmp_path)
    print("\n" + r.line())
    assert r.survived and r.stages_lost == 0, r.run.stderr[-2000:]
    # blind memory guard during the stages (points 90 s behind); catch-up brings 93% memory: all fail
    assert all(s["rejudged"] for s in r.run.stages)
    assert r.verdicts == ["fail"] * len(r.run.stages)
    assert any("re-judged with late metrics: pass -> fail (memory 93% > 90%" in w for w in r.run.summary["warnings"])


@pytest.mark.parametrize("name", ["datadog_5xx", "worker_killed", "proxy_429_503", "clock_ahead", "foreign_traffic"])
def test_the_tool_survives_the_fault_and_loses_no_finished_stage(name: str, tmp_path: Path) -> None:
    r = run_fault(name, tmp_path)
    print("\n" + r.line())
    assert r.survived, r.run.stderr[-2000:]
    assert r.stages_lost == 0 and r.run.stages_on_disk == len(r.run.stages)
    if name == "proxy_429_503":
        assert r.verdicts[1] == "fail" and r.stopped_reason == "guard:errors"
    if name == "worker_killed":
        assert r.verdicts[1] == "invalid: worker lost"
    if name in ("datadog_5xx", "clock_ahead"):
        assert all(s["blind"] for s in r.run.stages)  # said, per stage, never silently passed


def test_an_app_task_killed_mid_stage_fails_that_stage_not_the_tool(tmp_path: Path) -> None:
    r = run_fault("app_task_killed", tmp_path)
    print("\n" + r.line())
    assert r.survived and r.stages_lost == 0, r.run.stderr[-2000:]
