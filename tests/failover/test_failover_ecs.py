"""The ECS side of ``capacity failover`` against moto's server: the service's tasks listed by group,
the dry run naming them, and refusals that stop nothing (no load is sent here)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from rich.console import Console

from capacity.cluster.ecs_tasks import EcsServiceTasks
from capacity.core.errors import CapacityError
from capacity.plan.experiment import load_experiment
from capacity.search import SearchOptions
from capacity.search.failover_control import EcsTaskControl
from capacity.search.failover_plan import FailoverPlan
from capacity.search.failover_run import run_failover
from tests.conftest import Cli
from tests.helpers import write_experiment
from tests.scale.conftest import CLUSTER, REGION, SERVICE, Aws


def start_tasks(aws: Aws, n: int) -> list[str]:
    """``n`` tasks of the service (as its scheduler would start them) plus one one-off task of the cluster."""
    ecs = aws.ecs()
    for old in ecs.list_tasks(cluster=CLUSTER, desiredStatus="RUNNING")["taskArns"]:  # moto's state is per process
        ecs.stop_task(cluster=CLUSTER, task=old, reason="test set-up")
    ecs.update_service(cluster=CLUSTER, service=SERVICE, desiredCount=n)
    started = ecs.run_task(
        cluster=CLUSTER, taskDefinition="app", count=n, launchType="FARGATE", group=f"service:{SERVICE}"
    )
    ecs.run_task(cluster=CLUSTER, taskDefinition="app", count=1, launchType="FARGATE")  # not the service's
    return sorted(t["taskArn"] for t in started["tasks"])


def running(aws: Aws) -> set[str]:
    return set(aws.ecs().list_tasks(cluster=CLUSTER, desiredStatus="RUNNING")["taskArns"])


def ecs_file(tmp_path: Path, zones: int = 3) -> Path:
    return write_experiment(
        tmp_path / "ecs.toml",
        builtin=True,
        target={"base_url": "http://127.0.0.1:9"},
        cluster={"ecs_cluster": CLUSTER, "ecs_service": SERVICE, "region": REGION},
        production={"zones": zones},
    )


def test_lists_only_the_services_tasks_and_the_dry_run_names_the_one_it_would_stop(
    aws: Aws, tmp_path: Path, cli: Cli
) -> None:
    arns = start_tasks(aws, 3)
    assert [t.arn for t in EcsServiceTasks(CLUSTER, SERVICE, region=REGION).tasks()] == arns
    cp = cli("failover", str(ecs_file(tmp_path)), "--rps", "50", "--duration", "60s", "--dry-run", "--json")
    assert cp.returncode == 0, cp.stderr
    plan = json.loads(cp.stdout)
    assert plan["control"] == "ecs" and [t["task"] for t in plan["would_stop"]] == arns[:1]
    assert any(c.startswith("ecs:StopTask") and arns[0] in c for c in plan["calls"])
    assert sum(c.startswith("ecs:StopTask") for c in plan["calls"]) == 1
    assert not any("UpdateService" in c for c in plan["calls"])  # nothing is set, so nothing to restore
    assert len(running(aws)) == 4  # the dry run stopped nothing


def test_a_real_run_refuses_before_any_load_and_stops_nothing(aws: Aws, tmp_path: Path, cli: Cli) -> None:
    start_tasks(aws, 3)
    before = running(aws)
    exp = load_experiment(ecs_file(tmp_path, zones=1)).with_changes(metrics={"source": "none"})
    plan = FailoverPlan(50.0, "--rps 50", duration_s=30, loss_at_s=10, segment_s=5, lose="zone")
    control = EcsTaskControl(EcsServiceTasks(CLUSTER, SERVICE, region=REGION))
    options = SearchOptions(results_root=tmp_path / "r", json_mode=True)
    with pytest.raises(CapacityError, match="would stop all 3 app tasks"):
        run_failover(exp, plan, options=options, console=Console(quiet=True), control=control)
    assert running(aws) == before and aws.desired() == 3
    assert not (tmp_path / "r").exists()
    cp = cli("failover", str(ecs_file(tmp_path)), "--rps", "50", "--replacement-delay", "5s", "--dry-run")
    assert cp.returncode == 2 and "--replacement-delay applies to the built-in sandbox only" in cp.stderr
