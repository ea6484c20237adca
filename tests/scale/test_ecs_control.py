"""The ECS control against moto's server: suspend and restore, steady waits, drift seen by the watcher."""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from rich.console import Console

from capacity.cluster import EcsService
from capacity.core.errors import CapacityError, ExperimentError
from capacity.plan.experiment import load_experiment
from capacity.search import SearchOptions
from capacity.search.scale import ScaleOptions, control_for, run_scale
from capacity.search.scale_control import EcsControl, metrics_drift, tasks_reporting
from tests.conftest import Cli, run_cli
from tests.helpers import make_experiment, write_experiment
from tests.scale.conftest import CLUSTER, NOT_SUSPENDED, SERVICE, Aws


def control(poll_s: float = 0.1) -> EcsControl:
    return EcsControl(EcsService(CLUSTER, SERVICE), steady_timeout_s=10.0, poll_s=poll_s)


def test_prepare_suspends_autoscaling_and_restore_puts_back_count_and_state(aws: Aws) -> None:
    c = control()
    c.prepare()
    assert all(aws.suspended().values())
    c.set_size(3, lambda: False)
    assert aws.desired() == 3
    assert c.restore() == []
    assert aws.desired() == 1
    assert aws.suspended() == NOT_SUSPENDED


def test_a_count_changed_by_someone_else_during_a_stage_is_drift(aws: Aws) -> None:
    c = control(poll_s=0.1)
    c.prepare()
    c.set_size(2, lambda: False)
    start = datetime.now(UTC)
    time.sleep(0.3)
    assert c.drift(2, start, datetime.now(UTC)) is None
    aws.ecs().update_service(cluster=CLUSTER, service=SERVICE, desiredCount=3)
    time.sleep(0.4)
    reason = c.drift(2, start, datetime.now(UTC))
    assert reason is not None and "drifted" in reason and "desired 3" in reason
    assert c.drift(2, start - timedelta(hours=1), start - timedelta(minutes=59)) is None
    c.restore()
    assert aws.desired() == 1


def test_unknown_service_is_one_line(aws: Aws) -> None:
    with pytest.raises(CapacityError, match=r"not found|AWS DescribeServices"):
        EcsService(CLUSTER, "missing").state()


def test_tasks_reporting_counts_per_task_groups() -> None:
    frame = pd.DataFrame(
        {
            "metric": ["max_threads"] * 3 + ["queue_size"],
            "group": ["task_arn:a", "task_arn:b", "task_arn:a", "queue:default"],
            "t": [1.0, 1.0, 2.0, 1.0],
            "value": [4.0] * 4,
        }
    )
    assert tasks_reporting(frame) == 2
    assert metrics_drift(2, frame) is None
    assert "3" in str(metrics_drift(3, frame)) and "2 app tasks reported" in str(metrics_drift(3, frame))
    assert tasks_reporting(None) is None and metrics_drift(2, pd.DataFrame()) is None


def ecs_experiment(tmp_path: Path) -> Path:
    return write_experiment(
        tmp_path / "ecs.toml",
        builtin=True,
        target={"base_url": "http://127.0.0.1:9"},
        cluster={"ecs_cluster": CLUSTER, "ecs_service": SERVICE, "region": "us-gov-west-1"},
    )


def test_dry_run_prints_sizes_worst_case_and_aws_calls_without_calling_aws(tmp_path: Path, cli: Cli) -> None:
    proc = cli("scale", str(ecs_experiment(tmp_path)), "--sizes", "1,2,4", "--dry-run", "--json")
    assert proc.returncode == 0, proc.stderr
    plan = json.loads(proc.stdout)
    assert plan["sizes"] == [1, 2, 4] and plan["control"] == "ecs"
    assert plan["worst_case_s"] > 3 * plan["worst_case_per_size_s"]["search"]
    calls = plan["aws_calls"]
    assert sum("UpdateService" in c for c in calls) == 4  # three sizes and the restore
    assert any("SuspendedState=all true" in c for c in calls)
    assert "SuspendedState=<as found>" in calls[-1]
    text = cli("scale", "--dry-run")
    assert text.returncode == 0 and "AWS calls: none" in text.stdout


def test_an_ecs_service_needs_a_real_target_and_a_cluster(tmp_path: Path) -> None:
    exp = make_experiment(builtin=True)
    with pytest.raises(ExperimentError, match="sandbox://"):
        control_for(exp.with_changes(cluster={"ecs_cluster": CLUSTER, "ecs_service": SERVICE}))
    real = exp.with_changes(target={"base_url": "http://127.0.0.1:9"})
    with pytest.raises(ExperimentError, match="ecs_service"):
        control_for(real)
    with pytest.raises(ExperimentError, match="ecs_cluster"):
        control_for(real.with_changes(cluster={"ecs_service": SERVICE}))
    bad = run_cli("scale", "--sizes", "1,x", "--dry-run")
    assert bad.returncode == 2 and "--sizes" in bad.stderr


def _ecs_exp(tmp_path: Path, target: str) -> Any:
    exp = load_experiment(ecs_experiment(tmp_path))
    return exp.with_changes(target={"base_url": target}, metrics={"source": "none"})


def test_restored_after_a_failure_mid_series(aws: Aws, tmp_path: Path) -> None:
    """The target does not answer: the search fails before stage 1, and the cluster is put back."""
    options = ScaleOptions(sizes=[2], search=SearchOptions(results_root=tmp_path, json_mode=True))
    with pytest.raises(CapacityError):
        run_scale(_ecs_exp(tmp_path, "http://127.0.0.1:9"), options, console=Console(quiet=True), control=control())
    assert aws.desired() == 1 and aws.suspended() == NOT_SUSPENDED


class _TermDuringSet(EcsControl):
    def set_size(self, n: int, stop: Callable[[], bool]) -> None:
        super().set_size(n, stop)
        os.kill(os.getpid(), signal.SIGTERM)  # as a scheduler stopping the job would


def test_restored_after_sigterm(aws: Aws, tmp_path: Path) -> None:
    options = ScaleOptions(sizes=[2, 3], search=SearchOptions(results_root=tmp_path, json_mode=True))
    ctl = _TermDuringSet(EcsService(CLUSTER, SERVICE), steady_timeout_s=10.0, poll_s=0.1)
    out = run_scale(_ecs_exp(tmp_path, "http://127.0.0.1:9"), options, console=Console(quiet=True), control=ctl)
    assert out.stopped_reason == "interrupted" and out.sizes == []
    assert aws.desired() == 1 and aws.suspended() == NOT_SUSPENDED
    assert json.loads((out.path / "scaling.json").read_text())["stopped_reason"] == "interrupted"
