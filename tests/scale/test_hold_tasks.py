"""``capacity search`` holds the ECS task count still as ``capacity scale`` does (issue 20 item 4), on moto's server."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from capacity.cluster import EcsService
from capacity.core.errors import CapacityError
from capacity.core.models import RunSummary
from capacity.plan.experiment import load_experiment
from capacity.search import SearchOptions, hold_tasks
from capacity.search.scale_control import EcsControl
from tests.conftest import Cli
from tests.scale.conftest import CLUSTER, NOT_SUSPENDED, SERVICE, Aws
from tests.scale.test_ecs_control import ecs_experiment


def _exp(tmp_path: Path) -> Any:
    exp = load_experiment(ecs_experiment(tmp_path))
    return exp.with_changes(metrics={"source": "none"})


def _fast_control(monkeypatch: pytest.MonkeyPatch) -> None:
    import capacity.search.scale as scale

    monkeypatch.setattr(
        scale, "control_for", lambda exp: EcsControl(EcsService(CLUSTER, SERVICE), steady_timeout_s=10.0, poll_s=0.1)
    )


def test_search_suspends_sets_watches_and_restores(aws: Aws, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _fast_control(monkeypatch)
    exp = _exp(tmp_path)
    assert hold_tasks.holds_task_count(exp) and exp.cluster.app_tasks == 2
    seen: dict[str, Any] = {}

    def fake_search(e: Any, *, options: SearchOptions, console: Any) -> RunSummary:
        seen["suspended"] = aws.suspended()
        seen["desired"] = aws.desired()
        assert options.stage_check is not None
        start = datetime.now(UTC)
        seen["steady"] = options.stage_check(start, datetime.now(UTC), None)
        aws.ecs().update_service(cluster=CLUSTER, service=SERVICE, desiredCount=3)  # autoscaling or an operator
        time.sleep(0.5)
        seen["moved"] = options.stage_check(start, datetime.now(UTC), None)
        return RunSummary(run_id="r", results_dir=str(tmp_path), experiment=e.name, target="t")

    monkeypatch.setattr(hold_tasks, "run_search", fake_search)
    summary = hold_tasks.run_held_search(exp, SearchOptions(results_root=tmp_path), Console(quiet=True))
    assert all(seen["suspended"].values()) and seen["desired"] == 2  # held at [cluster] app_tasks
    assert seen["steady"] is None
    assert seen["moved"] is not None and "drifted" in seen["moved"] and "expected 2" in seen["moved"]
    assert aws.desired() == 1 and aws.suspended() == NOT_SUSPENDED  # put back as found
    assert summary.run_id == "r"


def test_restored_when_the_search_fails(aws: Aws, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The target does not answer: the search fails before stage 1, and the service is put back."""
    _fast_control(monkeypatch)
    with pytest.raises(CapacityError):
        hold_tasks.run_held_search(_exp(tmp_path), SearchOptions(results_root=tmp_path, json_mode=True))
    assert aws.desired() == 1 and aws.suspended() == NOT_SUSPENDED


def test_sandbox_and_plain_targets_are_not_held(tmp_path: Path) -> None:
    exp = _exp(tmp_path)
    assert not hold_tasks.holds_task_count(exp.with_changes(cluster={"ecs_service": ""}))


def test_dry_run_says_the_count_is_held(tmp_path: Path, cli: Cli) -> None:
    proc = cli("search", str(ecs_experiment(tmp_path)), "--dry-run")
    assert proc.returncode == 0, proc.stderr
    assert f"task count: held at 2 app tasks on ECS service {CLUSTER}/{SERVICE}" in proc.stdout
