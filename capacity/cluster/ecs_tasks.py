"""The app service's tasks through boto3, for ``capacity failover``: list them, stop given ones.

``ListTasks`` (``serviceName``, ``desiredStatus=RUNNING``) then ``DescribeTasks`` give each task's ARN,
zone and status; only tasks of the service's own group (``service:NAME``) count, so a one-off task
in the cluster is never chosen. ``StopTask`` stops one; the service scheduler replaces it (nothing
here starts or restores a task). Credentials and endpoint the usual boto3 way, as ``ecs``.
"""

from __future__ import annotations

from dataclasses import dataclass

from capacity.cluster.ecs import EcsService, _aws

STARTING = ("PROVISIONING", "PENDING", "ACTIVATING")
"""Last statuses of a task that is not serving yet."""


@dataclass(frozen=True)
class ServiceTask:
    """One task of the app service as the API shows it."""

    arn: str
    zone: str | None = None
    serving: bool = True
    """Past provisioning and meant to run (a replacement still starting is not)."""

    @property
    def short(self) -> str:
        return self.arn.rsplit("/", 1)[-1][:12]


class EcsServiceTasks(EcsService):
    """The service's tasks: ``tasks()`` and ``stop()`` on top of the service's count (``state()``)."""

    def tasks(self) -> list[ServiceTask]:
        ecs, _ = self._clients()
        arns: list[str] = []
        pages = _aws(
            lambda: list(
                ecs.get_paginator("list_tasks").paginate(
                    cluster=self.cluster, serviceName=self.service, desiredStatus="RUNNING"
                )
            ),
            "ListTasks",
        )
        for page in pages:
            arns.extend(page.get("taskArns") or [])
        out: list[ServiceTask] = []
        for k in range(0, len(arns), 100):
            chunk = arns[k : k + 100]
            found = _aws(lambda c=chunk: ecs.describe_tasks(cluster=self.cluster, tasks=c), "DescribeTasks")  # type: ignore[misc]
            for t in found.get("tasks") or []:
                if t.get("group") != f"service:{self.service}" or t.get("desiredStatus") != "RUNNING":
                    continue
                serving = str(t.get("lastStatus", "")) not in STARTING
                out.append(ServiceTask(str(t["taskArn"]), t.get("availabilityZone") or None, serving))
        return sorted(out, key=lambda t: t.arn)

    def stop(self, arn: str, reason: str) -> None:
        ecs, _ = self._clients()
        _aws(lambda: ecs.stop_task(cluster=self.cluster, task=arn, reason=reason), f"StopTask {arn}")

    def planned_stop_calls(self, arns: list[str]) -> list[str]:
        """The AWS calls a failover run makes, in order (``--dry-run``)."""
        where = f"cluster={self.cluster}"
        calls = [
            f"ecs:DescribeServices {where} service={self.service} (desiredCount, runningCount)",
            f"ecs:ListTasks {where} serviceName={self.service} desiredStatus=RUNNING",
            f"ecs:DescribeTasks {where} (zone, status; group service:{self.service})",
        ]
        calls += [f"ecs:StopTask {where} task={a} reason='capacity failover'" for a in arns]
        calls.append(
            f"ecs:DescribeServices + ListTasks + DescribeTasks every poll until {self.service} is back at its "
            "desired count (the service scheduler replaces the task; nothing is restored)"
        )
        return calls
