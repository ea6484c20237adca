"""The sandbox as an ECS service: follow the service's desired count by starting and stopping app tasks.

With ``follow_ecs = "CLUSTER/SERVICE"`` the supervisor polls ``DescribeServices`` every
``ecs_poll_s`` and sets its live app task count to the service's ``desiredCount``. The AWS endpoint,
region and credentials come the usual boto3 way (``AWS_ENDPOINT_URL`` points it at a local AWS
stand-in such as moto's server in tests). The ECS API reports ``runningCount`` itself; the sandbox's
own count shows in its metrics (one ``task_arn`` per live app task), which is how ``capacity scale``
confirms a size independently of the API.

It also plays the service scheduler's part for ``capacity failover``: each live app task is
registered in the API as one of the service's tasks (``RunTask`` with ``group = "service:NAME"``),
and a registered task that someone stopped (``StopTask``) stops the matching sandbox task, whose
replacement starts ``replacement_delay_s`` later and is registered in turn (``task_loss``).
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from capacity.plan.sandbox_settings import MAX_TASKS

if TYPE_CHECKING:
    from capacity.sandbox.config import SandboxConfig
    from capacity.sandbox.resize import AppScaler
    from capacity.sandbox.task_loss import TaskLoss

log = logging.getLogger("capacity.sandbox")


def _ecs_client() -> Any:
    import boto3

    return boto3.client("ecs")


def desired_count(client: Any, cluster: str, service: str) -> int | None:
    """The service's desired count, or None when the service is not there (yet)."""
    found = client.describe_services(cluster=cluster, services=[service]).get("services") or []
    return int(found[0]["desiredCount"]) if found else None


def service_tasks(client: Any, cluster: str, service: str) -> set[str]:
    """ARNs of the service's tasks meant to run (the group check: moto does not filter by service)."""
    arns: list[str] = []
    for page in client.get_paginator("list_tasks").paginate(
        cluster=cluster, serviceName=service, desiredStatus="RUNNING"
    ):
        arns.extend(page.get("taskArns") or [])
    found: set[str] = set()
    for k in range(0, len(arns), 100):
        for t in client.describe_tasks(cluster=cluster, tasks=arns[k : k + 100]).get("tasks") or []:
            if t.get("group") == f"service:{service}" and t.get("desiredStatus") == "RUNNING":
                found.add(str(t["taskArn"]))
    return found


class TaskMirror:
    """The sandbox's live app tasks as the service's tasks in the ECS API (sandbox ARN -> API ARN)."""

    def __init__(self, client: Any, cluster: str, service: str) -> None:
        self.client, self.cluster, self.service = client, cluster, service
        self.api_arn: dict[str, str] = {}

    def sync(self, live: list[str]) -> list[str]:
        """Register new live tasks, stop the API twins of retired ones; the live tasks stopped in the API."""
        running = service_tasks(self.client, self.cluster, self.service)
        gone = [own for own, api in self.api_arn.items() if own in live and api not in running]
        for own in gone:
            del self.api_arn[own]
        for own in [o for o in self.api_arn if o not in live]:
            self.client.stop_task(cluster=self.cluster, task=self.api_arn.pop(own), reason="sandbox: scaled in")
        new = [own for own in live if own not in self.api_arn and own not in gone]
        if new:
            found = self.client.describe_services(cluster=self.cluster, services=[self.service]).get("services")
            definition = found[0]["taskDefinition"] if found else None
            for own in new if definition else []:
                started = self.client.run_task(
                    cluster=self.cluster,
                    taskDefinition=definition,
                    launchType="FARGATE",
                    group=f"service:{self.service}",
                    startedBy="capacity-sandbox",
                )
                self.api_arn[own] = str(started["tasks"][0]["taskArn"])
        return gone


async def follow_ecs(scaler: AppScaler, cfg: SandboxConfig, losses: TaskLoss | None = None) -> None:
    """Poll the service and follow its desired count (less the tasks being replaced) until cancelled;
    with ``losses``, mirror the tasks and stop those stopped in the API. Errors are logged and retried."""
    assert cfg.follow_ecs is not None
    cluster, service = cfg.follow_ecs.split("/")
    client = await asyncio.to_thread(_ecs_client)
    mirror = TaskMirror(client, cluster, service)
    while True:
        try:
            want = await asyncio.to_thread(desired_count, client, cluster, service)
        except Exception as exc:  # a stand-in restarting, a network blip: try again next poll
            log.warning("sandbox: describe_services failed: %s", exc)
            want = None
        if want is not None and losses is not None:
            want -= losses.pending
        if want is not None and 0 <= want <= MAX_TASKS and want != len(scaler.live()):
            await scaler.set_app_tasks(want)
        if losses is not None:
            await _mirror_once(mirror, scaler, losses)
        await asyncio.sleep(cfg.ecs_poll_s)


async def _mirror_once(mirror: TaskMirror, scaler: AppScaler, losses: TaskLoss) -> None:
    try:
        gone = await asyncio.to_thread(mirror.sync, [str(getattr(c, "task_arn", "")) for c in scaler.live()])
    except Exception as exc:  # as above: next poll
        log.warning("sandbox: following the service's tasks failed: %s", exc)
        return
    for arn in gone:
        conn = losses.find(arn)
        if conn is not None and len(scaler.live()) > 1:
            losses.stop(conn)
