"""Losing an app task, the way ECS does it: ``StopTask`` drains one task, the service scheduler starts
a replacement some time later.

``capacity failover`` stops a task of the built-in sandbox through two loopback routes of its front
(``GET /_sandbox/tasks``, ``POST /_sandbox/tasks/stop``); with ``follow_ecs`` the sandbox sees the task
stopped in the ECS API instead (``capacity.sandbox.ecs_follow``). Either way the task is drained and
gone, the surviving tasks are told the new count, and ``replacement_delay_s`` later (the request's
``replace_after_s``, else the config's) a new app task starts, like a Fargate task being replaced.
The replacement delay is what a run measures as ``replaced_after_s``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Any

from aiohttp import web

if TYPE_CHECKING:
    from capacity.sandbox.config import SandboxConfig
    from capacity.sandbox.resize import AppScaler

log = logging.getLogger("capacity.sandbox")

MAX_REPLACE_AFTER_S = 3600.0


class TaskLoss:
    """Stops given app tasks and brings each back after a delay; counts replacements still to come."""

    def __init__(self, scaler: AppScaler, cfg: SandboxConfig) -> None:
        self.scaler, self.cfg = scaler, cfg
        self.pending = 0
        """Stopped tasks whose replacement has not started yet (the service's desired count includes them)."""
        self.stopped: list[dict[str, Any]] = []
        self._replacements: set[asyncio.Task[None]] = set()

    def find(self, task_arn: str) -> Any | None:
        return next((c for c in self.scaler.live() if getattr(c, "task_arn", None) == task_arn), None)

    def desired(self) -> int:
        """What the service wants: the live tasks plus those being replaced."""
        return len(self.scaler.live()) + self.pending

    def stop(self, conn: Any, replace_after_s: float | None = None) -> None:
        """Stop routing to ``conn`` now; drain and stop it, then start its replacement ``replace_after_s``
        later (default: the config's), in the background, as ECS does after ``StopTask`` returns."""
        delay = self.cfg.replacement_delay_s if replace_after_s is None else replace_after_s
        conn.alive = False  # the load balancer deregisters it at once
        self.pending += 1
        self.stopped.append({"task_arn": conn.task_arn, "at": time.time(), "replace_after_s": delay})
        log.info("sandbox: stopping app task %s; replacement in %.1f s", conn.task_arn, delay)
        task = asyncio.create_task(self._stop_and_replace(conn, delay))
        self._replacements.add(task)
        task.add_done_callback(self._replacements.discard)

    async def _stop_and_replace(self, conn: Any, delay: float) -> None:
        started = time.monotonic()
        try:
            await self.scaler.stop_task(conn)
            await asyncio.sleep(max(0.0, delay - (time.monotonic() - started)))
            await self.scaler.add_task()
        finally:
            self.pending -= 1

    def listing(self) -> dict[str, Any]:
        live: list[Any] = self.scaler.live()
        return {
            "desired": self.desired(),
            "running": len(live),
            "replacing": self.pending,
            "tasks": [{"task_arn": c.task_arn, "index": c.index} for c in live],
            "stopped": list(self.stopped),
        }


def add_task_routes(app: web.Application, losses: TaskLoss) -> None:
    """``GET /_sandbox/tasks`` and ``POST /_sandbox/tasks/stop`` (``{"task_arn", "replace_after_s"}``)."""

    async def tasks(_: web.Request) -> web.Response:
        return web.json_response(losses.listing())

    async def stop(request: web.Request) -> web.Response:
        try:
            body = await request.json()
            arn = str(body["task_arn"])
            after = body.get("replace_after_s")
            after = None if after is None else float(after)
        except (ValueError, KeyError, TypeError):
            return web.json_response({"error": 'expected {"task_arn": "...", "replace_after_s": seconds}'}, status=400)
        if after is not None and not 0 <= after <= MAX_REPLACE_AFTER_S:
            return web.json_response({"error": f"replace_after_s must be 0..{MAX_REPLACE_AFTER_S:g}"}, status=400)
        conn = losses.find(arn)
        if conn is None:
            return web.json_response({"error": f"no live app task {arn}"}, status=404)
        if len(losses.scaler.live()) <= 1:
            return web.json_response({"error": "refusing to stop the last live app task"}, status=409)
        losses.stop(conn, after)
        return web.json_response({"stopped": arn, **losses.listing()})

    app.router.add_get("/_sandbox/tasks", tasks)
    app.router.add_post("/_sandbox/tasks/stop", stop)
