"""The sandbox as an ECS service: follow the service's desired count by starting and stopping app tasks.

With ``follow_ecs = "CLUSTER/SERVICE"`` the supervisor polls ``DescribeServices`` every
``ecs_poll_s`` and sets its live app task count to the service's ``desiredCount``. The AWS endpoint,
region and credentials come the usual boto3 way (``AWS_ENDPOINT_URL`` points it at a local AWS
stand-in such as moto's server in tests). The ECS API reports ``runningCount`` itself; the sandbox's
own count shows in its metrics (one ``task_arn`` per live app task), which is how ``capacity scale``
confirms a size independently of the API.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from capacity.sandbox_settings import MAX_TASKS

if TYPE_CHECKING:
    from capacity.sandbox.config import SandboxConfig
    from capacity.sandbox.scaling import AppScaler

log = logging.getLogger("capacity.sandbox")


def _ecs_client() -> Any:
    import boto3

    return boto3.client("ecs")


def desired_count(client: Any, cluster: str, service: str) -> int | None:
    """The service's desired count, or None when the service is not there (yet)."""
    found = client.describe_services(cluster=cluster, services=[service]).get("services") or []
    return int(found[0]["desiredCount"]) if found else None


async def follow_ecs(scaler: AppScaler, cfg: SandboxConfig) -> None:
    """Poll the service and follow its desired count until cancelled; API errors are logged and retried."""
    assert cfg.follow_ecs is not None
    cluster, service = cfg.follow_ecs.split("/")
    client = await asyncio.to_thread(_ecs_client)
    while True:
        try:
            want = await asyncio.to_thread(desired_count, client, cluster, service)
        except Exception as exc:  # a stand-in restarting, a network blip: try again next poll
            log.warning("sandbox: describe_services failed: %s", exc)
            want = None
        if want is not None and 0 <= want <= MAX_TASKS and want != len(scaler.live()):
            await scaler.set_app_tasks(want)
        await asyncio.sleep(cfg.ecs_poll_s)
