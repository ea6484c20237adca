"""The fault matrix (issue 21), each fault a short real search on loopback: the tool survives, says what
happened, and loses no finished stage. ``benchmarks/bench_faults.py`` prints the same runs as a table.

The eight searches are independent (each its own target, fake Datadog, results folder and subprocess) and
wait-bound (10-60 req/s against 5-20 ms handlers), so they run side by side once per module and each
test checks its own fault's run: the matrix takes as long as its slowest fault, not the sum.
"""

from __future__ import annotations

import threading

import pytest

from tests.faults.matrix import FAULTS, FaultResult, run_fault

pytestmark = [pytest.mark.slow, pytest.mark.waits]

Matrix = dict[str, FaultResult | BaseException]
"""Each fault's run (or what its run raised)."""


@pytest.fixture(scope="module")
def matrix(tmp_path_factory: pytest.TempPathFactory) -> Matrix:
    """Every fault's run, made concurrently (threads are greenlets here: the runs wait on subprocesses)."""
    root = tmp_path_factory.mktemp("faults")
    results: Matrix = {}

    def one(name: str) -> None:
        try:
            results[name] = run_fault(name, root)
        except BaseException as e:  # re-raised in the test of that fault
            results[name] = e

    threads = [threading.Thread(target=one, args=(name,), daemon=True) for name in FAULTS]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    return results


def _result(matrix: Matrix, name: str) -> FaultResult:
    r = matrix.get(name)
    if isinstance(r, BaseException):
        raise r
    assert r is not None, f"fault {name} did not finish"
    return r


def test_a_steady_background_queue_no_longer_stops_the_search(matrix: Matrix) -> None:
    r = _result(matrix, "steady_queue")
    print("\n" + r.line())
    assert r.survived and r.stages_lost == 0, r.run.stderr[-2000:]
    assert r.stopped_reason == "max_rps" and r.verdicts == ["pass", "pass", "pass"]
    assert r.notes == ["baseline queue 10.0"]


def test_points_90_s_late_are_judged_again_when_they_arrive(matrix: Matrix) -> None:
    r = _result(matrix, "late_points")
    print("\n" + r.line())
    assert r.survived and r.stages_lost == 0, r.run.stderr[-2000:]
    # blind memory guard during the stages (points 90 s behind); catch-up brings 93% memory: all fail
    assert all(s["rejudged"] for s in r.run.stages)
    assert r.verdicts == ["fail"] * len(r.run.stages)
    assert any("re-judged with late metrics: pass -> fail (memory 93% > 90%" in w for w in r.run.summary["warnings"])


@pytest.mark.parametrize("name", ["datadog_5xx", "worker_killed", "proxy_429_503", "clock_ahead", "foreign_traffic"])
def test_the_tool_survives_the_fault_and_loses_no_finished_stage(name: str, matrix: Matrix) -> None:
    r = _result(matrix, name)
    print("\n" + r.line())
    assert r.survived, r.run.stderr[-2000:]
    assert r.stages_lost == 0 and r.run.stages_on_disk == len(r.run.stages)
    if name == "proxy_429_503":
        assert r.verdicts[1] == "fail" and r.stopped_reason == "guard:errors"
    if name == "worker_killed":
        assert r.verdicts[1] == "invalid: worker lost"
    if name in ("datadog_5xx", "clock_ahead"):
        assert all(s["blind"] for s in r.run.stages)  # said, per stage, never silently passed


def test_an_app_task_killed_mid_stage_fails_that_stage_not_the_tool(matrix: Matrix) -> None:
    r = _result(matrix, "app_task_killed")
    print("\n" + r.line())
    assert r.survived and r.stages_lost == 0, r.run.stderr[-2000:]
