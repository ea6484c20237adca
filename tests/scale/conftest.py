"""Scale tests: moto's server (a real local AWS API) on 127.0.0.1 and the scaling sandbox; nothing leaves the host."""

from __future__ import annotations

from capacity.load.patching import patch_gevent

patch_gevent()  # before boto3/urllib3 import ssl: these tests drive load

import logging  # noqa: E402
import urllib.request  # noqa: E402
from collections.abc import Iterator  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from typing import Any  # noqa: E402

import boto3  # noqa: E402
import pytest  # noqa: E402

CLUSTER, SERVICE = "staging", "clinician-workflow-app"
REGION = "us-gov-west-1"
RESOURCE = f"service/{CLUSTER}/{SERVICE}"
DIMENSION = "ecs:service:DesiredCount"


@dataclass
class Aws:
    """A running moto server and the environment that points boto3 (ours and the sandbox's) at it."""

    url: str
    env: dict[str, str]

    def ecs(self) -> Any:
        return boto3.client("ecs", endpoint_url=self.url, region_name=REGION)

    def autoscaling(self) -> Any:
        return boto3.client("application-autoscaling", endpoint_url=self.url, region_name=REGION)

    def desired(self) -> int:
        return int(self.ecs().describe_services(cluster=CLUSTER, services=[SERVICE])["services"][0]["desiredCount"])

    def suspended(self) -> dict[str, bool]:
        found = self.autoscaling().describe_scalable_targets(ServiceNamespace="ecs", ResourceIds=[RESOURCE])
        return dict(found["ScalableTargets"][0].get("SuspendedState") or {})


NOT_SUSPENDED = {
    "DynamicScalingInSuspended": False,
    "DynamicScalingOutSuspended": False,
    "ScheduledScalingSuspended": False,
}


@pytest.fixture(scope="session")
def moto_url() -> Iterator[str]:
    """One moto server for the session (stopping one takes half a second); ``aws`` resets it per test."""
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture
def aws(moto_url: str, monkeypatch: pytest.MonkeyPatch) -> Aws:
    """moto's server, empty but for the staging cluster: the app service at 1 task, autoscaling registered and
    active."""
    url = moto_url
    with urllib.request.urlopen(urllib.request.Request(f"{url}/moto-api/reset", method="POST"), timeout=10):
        pass  # every test starts from an empty AWS, as with a server of its own
    env = {
        "AWS_ENDPOINT_URL": url,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
    }
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    a = Aws(url, env)
    ecs = a.ecs()
    ecs.create_cluster(clusterName=CLUSTER)
    ecs.register_task_definition(family="app", containerDefinitions=[{"name": "app", "image": "app", "memory": 512}])
    ecs.create_service(cluster=CLUSTER, serviceName=SERVICE, taskDefinition="app", desiredCount=1)
    ecs.update_service(cluster=CLUSTER, service=SERVICE, desiredCount=1)  # moto: running follows an update
    a.autoscaling().register_scalable_target(
        ServiceNamespace="ecs",
        ResourceId=RESOURCE,
        ScalableDimension=DIMENSION,
        MinCapacity=1,
        MaxCapacity=8,
        SuspendedState=NOT_SUSPENDED,
    )
    return a
