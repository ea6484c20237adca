"""Fixtures for the observe tests: a fake Datadog on loopback with a small known cluster in it."""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from capacity.observe import StageWindow
from capacity.observe.presets import SIDEKIQ_PER_QUEUE_SIZE
from capacity.plan.experiment import Experiment
from tests.helpers import make_experiment
from tests.observe.fake_datadog import FakeDatadog

API_KEY = "sentinel-api-key-7f3a9c"
APP_KEY = "sentinel-app-key-b41e2d"
ARN = "arn:aws:ecs:us-gov-west-1:123456789012:task/staging/"
TASKS = {
    "aaaa1111": {"cpu": 40.0, "mem_mib": 400.0, "pool": 2.0, "backlog": 0.0},
    "bbbb2222": {"cpu": 60.0, "mem_mib": 600.0, "pool": 1.0, "backlog": 3.0},
}
LIMIT_MIB = 1024.0
MAX_THREADS = 5.0
QUEUE_GROWTH = 3.2  # jobs/s on queue "default"
SIDECARS = {"datadog-agent": (3.0, 95.0), "log-router": (1.0, 30.0)}
"""Each app task's sidecar containers: CPU % (100 = one vCPU) and memory MiB."""
APP_VCPUS = 2.0  # cpu_units_per_task = 2048


def task_cpu_pct(short: str) -> float:
    """What ECS counts for one app task: every container's CPU summed, over the task's vCPUs."""
    return (TASKS[short]["cpu"] + sum(c for c, _ in SIDECARS.values())) / APP_VCPUS


def make_exp(url: str, **metrics: Any) -> Experiment:
    """The populated cluster's experiment; its job queue is read per queue (a custom metric, marked so)."""
    custom = {"queue_size": SIDEKIQ_PER_QUEUE_SIZE} if metrics.get("sidekiq") != "oss" else {}
    queries = {**custom, **metrics.pop("queries", {})}
    return make_experiment(
        name="observe test",
        cluster={"puma_threads": 5, "cpu_units_per_task": 2048, "sidekiq_cpu_units_per_task": 1024},
        metrics={
            "source": "datadog",
            "url": url,
            "cluster": "staging",
            "app_service": "cw-app",
            "sidekiq_service": "cw-sidekiq",
            "rollup_seconds": 5,
            "poll_deadline_s": 3,
            "poll_interval_s": 0.2,
            "intervals": {"*": 1},  # the fake holds per-second points: every query at rollup_seconds
            "queries": queries,
            **metrics,
        },
    )


def populate(fake: FakeDatadog, t0: float, t1: float, *, mem_unit: str = "byte") -> None:
    """Per-second points for 2 app tasks, 2 Sidekiq queues and a Sidekiq task over [t0, t1]."""
    secs = range(int(t0), math.ceil(t1) + 1)
    for short, v in TASKS.items():
        tags = ["ecs_cluster_name:staging", "ecs_service:cw-app", f"task_arn:{ARN}{short}"]
        mem_scale = 1.0 if mem_unit == "mebibyte" else 1024 * 1024
        containers = {"app": (v["cpu"], v["mem_mib"]), **SIDECARS}
        for name, (cpu, mem) in containers.items():
            ctags = [*tags, f"ecs_container_name:{name}"]
            fake.add("ecs.fargate.cpu.percent", ctags, [(t, cpu) for t in secs], "percent")
            fake.add("ecs.fargate.mem.usage", ctags, [(t, mem * mem_scale) for t in secs], mem_unit)
            fake.add("ecs.fargate.mem.cache", ctags, [(t, 0.0) for t in secs], mem_unit)  # no page cache here
            fake.add("ecs.fargate.mem.limit", ctags, [(t, LIMIT_MIB * mem_scale) for t in secs], mem_unit)
        fake.add("puma.pool_capacity", tags, [(t, v["pool"]) for t in secs], "thread")
        fake.add("puma.max_threads", tags, [(t, MAX_THREADS) for t in secs], "thread")
        fake.add("puma.backlog", tags, [(t, v["backlog"]) for t in secs])
    sk = ["ecs_cluster_name:staging", "ecs_service:cw-sidekiq"]
    fake.add("sidekiq.queue.size", [*sk, "queue:default"], [(t, 2 + QUEUE_GROWTH * (t - t0)) for t in secs], "job")
    fake.add("sidekiq.queue.size", [*sk, "queue:mailers"], [(t, 1.0) for t in secs], "job")
    total = [(t, 3 + QUEUE_GROWTH * (t - t0)) for t in secs]  # Sidekiq Enterprise's total of all queues
    fake.add("sidekiq.enqueued", sk, total)
    fake.add("sidekiq.queue.latency", [*sk, "queue:default"], [(t, 4.0) for t in secs], "second")
    fake.add("sidekiq.queue.latency", [*sk, "queue:mailers"], [(t, 0.5) for t in secs], "second")
    fake.add("sidekiq.jobs.count", [*sk, "queue:default"], [(t, 6.0) for t in secs], "job")
    fake.add("sidekiq.jobs.count", [*sk, "queue:mailers"], [(t, 4.0) for t in secs], "job")
    sk_task = [*sk, f"task_arn:{ARN}cccc3333", "ecs_container_name:sidekiq"]
    fake.add("ecs.fargate.cpu.percent", sk_task, [(t, 30.0) for t in secs], "percent")


def past_window(stage: int = 0, seconds: int = 20, ago: int = 60) -> StageWindow:
    """A window that ended ``ago`` seconds back, starting off the rollup grid (as stages do)."""
    now = time.time()
    start = math.floor((now - ago - seconds) / 5) * 5 + 2.3
    return StageWindow(stage, datetime.fromtimestamp(start, UTC), datetime.fromtimestamp(start + seconds, UTC))


@pytest.fixture
def fake() -> Iterator[FakeDatadog]:
    with FakeDatadog(api_key=API_KEY, app_key=APP_KEY) as f:
        yield f
