"""How ``capacity failover`` lists and stops app tasks, and watches the service come back.

Two controls with one shape: the built-in sandbox (its supervisor's loopback task routes,
``capacity.sandbox.task_loss``) and an ECS service (``capacity.cluster.ecs_tasks``: ``StopTask``).
Neither restores anything: the service scheduler (or the sandbox, standing in for it) replaces the
stopped task; ``LossWatch`` samples the service from the loss until it is back at its desired count.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from capacity.cluster.ecs_tasks import EcsServiceTasks, ServiceTask
from capacity.core.errors import CapacityError

log = logging.getLogger("capacity.failover")

STOP_REASON = "capacity failover: losing a task at peak"


class TaskControl(Protocol):
    """What the failover run needs from the cluster under test."""

    kind: str

    def desired(self) -> int: ...

    def tasks(self) -> list[ServiceTask]: ...

    def stop(self, arn: str) -> None: ...

    def planned_calls(self, arns: list[str]) -> list[str]: ...


class SandboxTasks:
    """The built-in sandbox's app tasks, through its supervisor's ``/_sandbox/tasks`` routes (loopback)."""

    kind = "sandbox"

    def __init__(self, base_url: str, replace_after_s: float | None = None, timeout_s: float = 10.0) -> None:
        self.base_url, self.replace_after_s, self.timeout_s = base_url.rstrip("/"), replace_after_s, timeout_s

    def _call(self, path: str, body: dict[str, object] | None = None) -> dict[str, object]:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base_url + path, data=data, method="POST" if body is not None else "GET")
        req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:
                out: dict[str, object] = json.loads(resp.read())
                return out
        except urllib.error.HTTPError as exc:
            detail = json.loads(exc.read() or b"{}").get("error", exc.reason)
            raise CapacityError(f"sandbox {path}: HTTP {exc.code}: {detail}") from None
        except (urllib.error.URLError, OSError) as exc:
            raise CapacityError(f"sandbox {path}: {exc}") from None

    def listing(self) -> dict[str, object]:
        return self._call("/_sandbox/tasks")

    def desired(self) -> int:
        return int(self.listing()["desired"])  # type: ignore[call-overload]

    def tasks(self) -> list[ServiceTask]:
        found = self.listing().get("tasks") or []
        return sorted((ServiceTask(str(t["task_arn"])) for t in found), key=lambda t: t.arn)  # type: ignore[attr-defined]

    def stop(self, arn: str) -> None:
        self._call("/_sandbox/tasks/stop", {"task_arn": arn, "replace_after_s": self.replace_after_s})

    def planned_calls(self, arns: list[str]) -> list[str]:
        after = "the sandbox's replacement_delay_s" if self.replace_after_s is None else f"{self.replace_after_s:g} s"
        calls = ["sandbox GET /_sandbox/tasks (the live app tasks)"]
        calls += [f"sandbox POST /_sandbox/tasks/stop task_arn={a} (replaced after {after})" for a in arns]
        calls.append("sandbox GET /_sandbox/tasks every poll until the app tasks are back at their count")
        return calls


class EcsTaskControl:
    """An ECS service's tasks (``StopTask``); its desired count and running count from ``DescribeServices``."""

    kind = "ecs"

    def __init__(self, service: EcsServiceTasks) -> None:
        self.service = service

    def desired(self) -> int:
        return self.service.state().desired

    def tasks(self) -> list[ServiceTask]:
        return self.service.tasks()

    def stop(self, arn: str) -> None:
        self.service.stop(arn, STOP_REASON)

    def planned_calls(self, arns: list[str]) -> list[str]:
        return self.service.planned_stop_calls(arns)


@dataclass
class Sample:
    t: float
    desired: int
    serving: int
    arns: tuple[str, ...]


@dataclass
class LossWatch:
    """Samples the service every ``poll_s`` from the loss on; ``back_at`` is when it was whole again.

    Whole again: as many serving tasks as the desired count before the loss, none of them a lost one.
    """

    control: TaskControl
    desired_before: int
    lost: tuple[str, ...]
    lost_at: float
    poll_s: float = 1.0
    samples: list[Sample] = field(default_factory=list)
    back_at: float | None = None
    errors: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="capacity-failover-watch", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.poll_once()
            if self.back_at is not None:
                return
            self._stop.wait(self.poll_s)

    def poll_once(self) -> None:
        try:
            tasks = self.control.tasks()
        except CapacityError as exc:
            self.errors += 1
            log.warning("failover watch: %s", exc)
            return
        now = time.time()
        serving = [t.arn for t in tasks if t.serving]
        self.samples.append(Sample(now, self.desired_before, len(serving), tuple(serving)))
        if self.back_at is None and len(serving) >= self.desired_before and not set(serving) & set(self.lost):
            self.back_at = now
            log.info("failover: back at %d serving tasks %.1f s after the loss", len(serving), now - self.lost_at)

    def wait_back(self, deadline: float, stop: Callable[[], bool]) -> bool:
        """Block until the service is back, ``deadline`` (epoch seconds) passes or ``stop()``; True when back."""
        while self.back_at is None and time.time() < deadline and not stop():
            time.sleep(min(0.2, self.poll_s))
        return self.back_at is not None

    def end(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def timeline(self) -> list[dict[str, float]]:
        """Serving task count over time, seconds after the loss: each change (the report divides by it)."""
        keep = [s for k, s in enumerate(self.samples) if k == 0 or s.serving != self.samples[k - 1].serving]
        return [{"at_s": round(s.t - self.lost_at, 3), "serving": s.serving} for s in keep]
