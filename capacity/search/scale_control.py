"""How ``capacity scale`` sets the staging app task count, checks it held, and puts the cluster back.

Two controls: the built-in sandbox (each size's search starts a sandbox with that many app tasks)
and an ECS service through the AWS API (``capacity.cluster.ecs``): desired count set, autoscaling
suspended for the run, the service watched during every stage, and both restored afterwards. Either
way the metrics are the independent witness: the number of app tasks reporting (distinct
``task_arn`` groups of a per-task query) must equal the size, before the search and in every stage.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Protocol

from capacity.cluster.ecs import ALL_SUSPENDED, EcsService, ScalingTarget
from capacity.core.errors import CapacityError

if TYPE_CHECKING:
    import pandas as pd

    from capacity.observe.source import MetricsSource

log = logging.getLogger("capacity.scale")

PER_TASK_METRICS = ("cpu_pct", "mem_usage", "max_threads", "pool_capacity", "backlog")
"""Queries grouped ``by {task_arn}``: one group per app task that reported in the window. The ECS Fargate
check's CPU first: Puma's check metrics carry ``task_arn`` only at orchestrator tag cardinality."""


def tasks_reporting(frame: pd.DataFrame | None) -> int | None:
    """App tasks with points in a metrics frame (the first per-task query present); None without data."""
    if frame is None or frame.empty or "metric" not in frame.columns:
        return None
    for name in PER_TASK_METRICS:
        groups = frame.loc[frame["metric"] == name, "group"]
        if len(groups):
            return int(groups.nunique())
    return None


def metrics_drift(expected: int, frame: pd.DataFrame | None) -> str | None:
    """A reason when the stage's metrics show a different number of app tasks than the size."""
    seen = tasks_reporting(frame)
    if seen is None or seen == expected:
        return None
    return f"app task count drifted: {seen} app tasks reported metrics during the stage, expected {expected}"


class ClusterControl(Protocol):
    """What the scale use case needs from the cluster under test."""

    kind: str

    def prepare(self) -> None: ...

    def set_size(self, n: int, stop: Callable[[], bool]) -> None: ...

    def drift(self, expected: int, start: datetime, end: datetime) -> str | None: ...

    def restore(self) -> list[str]: ...

    def planned_calls(self, sizes: list[int]) -> list[str]: ...


class SandboxControl:
    """The built-in sandbox: each size's search starts its own sandbox, so nothing to set or restore."""

    kind = "sandbox"

    def prepare(self) -> None:
        return None

    def set_size(self, n: int, stop: Callable[[], bool]) -> None:
        return None

    def drift(self, expected: int, start: datetime, end: datetime) -> str | None:
        return None

    def restore(self) -> list[str]:
        return []

    def planned_calls(self, sizes: list[int]) -> list[str]:
        return []


class EcsControl:
    """An ECS service: remember, suspend autoscaling, set each size and watch it, restore both."""

    kind = "ecs"

    def __init__(self, service: EcsService, *, steady_timeout_s: float = 900.0, poll_s: float = 2.0) -> None:
        self.service = service
        self.steady_timeout_s, self.poll_s = steady_timeout_s, poll_s
        self.original_desired: int | None = None
        self.original_scaling: ScalingTarget | None = None
        self.suspended = False
        self._samples: list[tuple[float, int, int]] = []
        self._lock = threading.Lock()
        self._stop_watch = threading.Event()
        self._watcher: threading.Thread | None = None

    def prepare(self) -> None:
        """Remember the desired count and the autoscaling state, then suspend autoscaling."""
        self.original_desired = self.service.state().desired
        self.original_scaling = self.service.scaling_target()
        if self.original_scaling is not None:
            self.service.set_suspended(dict(ALL_SUSPENDED))
            self.suspended = True
        log.info("ecs: desired %s as found; autoscaling %s", self.original_desired, self.original_scaling)

    def set_size(self, n: int, stop: Callable[[], bool]) -> None:
        """Set the desired count and wait until the service is steady at it (or ``stop()`` says so)."""
        self._end_watch()
        self.service.set_desired(n)
        deadline = time.monotonic() + self.steady_timeout_s
        while True:
            st = self.service.state()
            if st.steady and st.desired == n:
                break
            if stop():
                return
            if time.monotonic() > deadline:
                raise CapacityError(
                    f"ECS service {self.service.service}: not steady at {n} tasks within {self.steady_timeout_s:g} s "
                    f"(desired {st.desired}, running {st.running}, pending {st.pending}, {st.deployments} deployments)"
                )
            time.sleep(self.poll_s)
        self._samples = []
        self._stop_watch = threading.Event()
        self._watcher = threading.Thread(target=self._watch, name="capacity-ecs-watch", daemon=True)
        self._watcher.start()

    def _watch(self) -> None:
        while not self._stop_watch.wait(self.poll_s):
            try:
                st = self.service.state()
            except CapacityError as exc:
                log.warning("ecs watch: %s", exc)
                continue
            with self._lock:
                self._samples.append((time.time(), st.desired, st.running))

    def _end_watch(self) -> None:
        self._stop_watch.set()
        if self._watcher is not None:
            self._watcher.join(timeout=10)
            self._watcher = None

    def drift(self, expected: int, start: datetime, end: datetime) -> str | None:
        """A reason when ECS showed another desired or running count during [start, end]."""
        lo, hi = start.timestamp(), (end + timedelta(seconds=self.poll_s)).timestamp()
        with self._lock:
            bad = [(t, d, r) for t, d, r in self._samples if lo <= t <= hi and (d != expected or r != expected)]
        if not bad:
            return None
        t, d, r = bad[0]
        at = datetime.fromtimestamp(t, UTC).strftime("%H:%M:%S")
        return f"app task count drifted: ECS showed desired {d}, running {r} at {at} UTC, expected {expected}"

    def restore(self) -> list[str]:
        """Put the desired count and autoscaling back as found; each failure is returned, not raised."""
        self._end_watch()
        problems = []
        if self.original_desired is not None:
            try:
                self.service.set_desired(self.original_desired)
            except CapacityError as exc:
                problems.append(f"could not restore desired count {self.original_desired}: {exc}")
        if self.suspended and self.original_scaling is not None:
            try:
                self.service.set_suspended(self.original_scaling.suspended)
            except CapacityError as exc:
                problems.append(f"could not restore autoscaling: {exc}")
        return problems

    def planned_calls(self, sizes: list[int]) -> list[str]:
        return self.service.planned_calls(sizes)


def confirm_from_metrics(source: MetricsSource, n: int, *, timeout_s: float, stop: Callable[[], bool]) -> str | None:
    """Wait until the metrics show ``n`` app tasks reporting over the last few seconds.

    Returns a warning when the metrics have no per-task data (nothing to confirm with); raises when
    they keep showing another count after ``timeout_s``.
    """
    from capacity.observe.source import StageWindow

    settle = datetime.now(UTC)
    deadline = time.monotonic() + timeout_s
    seen: int | None = None
    while not stop():
        time.sleep(1.0)
        now = datetime.now(UTC)
        start = max(settle + timedelta(seconds=1), now - timedelta(seconds=5))
        if now - start < timedelta(seconds=2):
            continue
        seen = tasks_reporting(source.fetch_stage(StageWindow(stage=-1, start=start, end=now), wait=False).frame)
        if seen == n:
            return None
        if time.monotonic() > deadline:
            if seen is None:
                return f"{n} app tasks: no per-task metrics to confirm the count with"
            raise CapacityError(f"the service is steady at {n} tasks but {seen} app tasks report metrics")
    return None
