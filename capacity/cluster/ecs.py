"""The thin boto3 adapter for the staging cluster: an ECS service's task count and its autoscaling.

``capacity scale`` sets the app service's desired count (ECS ``UpdateService``), watches it settle
(``DescribeServices``), and suspends the service's autoscaling for the run (Application Auto
Scaling ``RegisterScalableTarget`` with ``SuspendedState``) so nothing else moves the count under
a stage. Both are put back as they were afterwards. The endpoint, region and credentials come the
usual boto3 way (environment, profile, instance role; ``AWS_ENDPOINT_URL`` for a local stand-in);
nothing here stores a credential. Every AWS error becomes one ``CapacityError`` line.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from capacity.core.errors import CapacityError

DIMENSION = "ecs:service:DesiredCount"
ALL_SUSPENDED = {
    "DynamicScalingInSuspended": True,
    "DynamicScalingOutSuspended": True,
    "ScheduledScalingSuspended": True,
}
T = TypeVar("T")


@dataclass(frozen=True)
class ServiceState:
    """What ECS says of the service now."""

    desired: int
    running: int
    pending: int
    deployments: int

    @property
    def steady(self) -> bool:
        """One deployment, every desired task running, none pending."""
        return self.deployments <= 1 and self.pending == 0 and self.running == self.desired


@dataclass(frozen=True)
class ScalingTarget:
    """The service's Application Auto Scaling target as found (``None`` state: not registered)."""

    min_capacity: int
    max_capacity: int
    suspended: dict[str, bool]


class EcsService:
    """One ECS service (``cluster``/``service``) and its scalable target, through boto3."""

    def __init__(self, cluster: str, service: str, *, region: str | None = None) -> None:
        self.cluster, self.service, self.region = cluster, service, region
        self._ecs: Any = None
        self._aas: Any = None

    @property
    def resource_id(self) -> str:
        return f"service/{self.cluster}/{self.service}"

    def _clients(self) -> tuple[Any, Any]:
        if self._ecs is None:
            import boto3

            session = boto3.session.Session(region_name=self.region) if self.region else boto3.session.Session()
            self._ecs = _aws(lambda: session.client("ecs"), "ECS client")
            self._aas = _aws(lambda: session.client("application-autoscaling"), "Application Auto Scaling client")
        return self._ecs, self._aas

    def state(self) -> ServiceState:
        ecs, _ = self._clients()
        found = _aws(lambda: ecs.describe_services(cluster=self.cluster, services=[self.service]), "DescribeServices")
        services = found.get("services") or []
        if not services:
            raise CapacityError(f"ECS service {self.service!r} not found in cluster {self.cluster!r}")
        s = services[0]
        return ServiceState(
            desired=int(s.get("desiredCount", 0)),
            running=int(s.get("runningCount", 0)),
            pending=int(s.get("pendingCount", 0)),
            deployments=len(s.get("deployments") or []),
        )

    def set_desired(self, count: int) -> None:
        ecs, _ = self._clients()
        _aws(
            lambda: ecs.update_service(cluster=self.cluster, service=self.service, desiredCount=count),
            f"UpdateService desiredCount={count}",
        )

    def scaling_target(self) -> ScalingTarget | None:
        _, aas = self._clients()
        found = _aws(
            lambda: aas.describe_scalable_targets(
                ServiceNamespace="ecs", ResourceIds=[self.resource_id], ScalableDimension=DIMENSION
            ),
            "DescribeScalableTargets",
        )
        targets = found.get("ScalableTargets") or []
        if not targets:
            return None
        t = targets[0]
        state = t.get("SuspendedState") or {}
        return ScalingTarget(
            min_capacity=int(t.get("MinCapacity", 0)),
            max_capacity=int(t.get("MaxCapacity", 0)),
            suspended={k: bool(state.get(k, False)) for k in ALL_SUSPENDED},
        )

    def set_suspended(self, suspended: dict[str, bool]) -> None:
        """Suspend (or put back) the target's scaling activities; min and max capacity are left alone."""
        _, aas = self._clients()
        _aws(
            lambda: aas.register_scalable_target(
                ServiceNamespace="ecs",
                ResourceId=self.resource_id,
                ScalableDimension=DIMENSION,
                SuspendedState=suspended,
            ),
            "RegisterScalableTarget SuspendedState",
        )

    def planned_calls(self, sizes: list[int]) -> list[str]:
        """The AWS calls a scale run over ``sizes`` makes, in order (``--dry-run``)."""
        where = f"cluster={self.cluster} service={self.service}"
        calls = [
            f"ecs:DescribeServices {where} (remember desiredCount)",
            f"application-autoscaling:DescribeScalableTargets ResourceId={self.resource_id} (remember SuspendedState)",
            f"application-autoscaling:RegisterScalableTarget ResourceId={self.resource_id} SuspendedState=all true",
        ]
        for n in sizes:
            calls.append(f"ecs:UpdateService {where} desiredCount={n}")
            calls.append(f"ecs:DescribeServices {where} (until runningCount={n}, one deployment; and during stages)")
        calls.append(f"ecs:UpdateService {where} desiredCount=<as found>")
        calls.append(
            f"application-autoscaling:RegisterScalableTarget ResourceId={self.resource_id} SuspendedState=<as found>"
        )
        return calls


def _aws(call: Callable[[], T], what: str) -> T:
    """Run one AWS call; credentials, permission and API errors become one line naming the call."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        return call()
    except ClientError as exc:
        err = exc.response.get("Error", {})
        raise CapacityError(f"AWS {what}: {err.get('Code', 'error')}: {err.get('Message', exc)}") from None
    except BotoCoreError as exc:
        raise CapacityError(f"AWS {what}: {exc}") from None
