"""Changing the number of app tasks of a running sandbox, the way an ECS service does.

Scaling out starts new app task processes and routes to them once they said hello. Scaling in
stops routing to the newest tasks, lets their in-flight requests finish (up to ``DRAIN_S``), then
closes their connection so they exit, like ECS draining a task from the load balancer. After every
change the live tasks are told the new count, which sets the shared bottleneck's slowdown
(``capacity.sandbox.contention``).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any, Protocol

from capacity.core.errors import CapacityError
from capacity.sandbox.framing import encode


class TaskConn(Protocol):
    """One app task's connection as the supervisor keeps it."""

    alive: bool
    pid: int
    pending: dict[int, Any]
    writer: asyncio.StreamWriter


class Supervisor(Protocol):
    """What scaling needs of the supervisor (``capacity.sandbox.supervisor``), without importing it."""

    @property
    def apps(self) -> list[Any]: ...

    def next_app_index(self) -> int: ...

    async def spawn(self, role: str, index: int) -> None: ...

    async def reap(self, pid: int) -> None: ...


DRAIN_S = 5.0
START_S = 30.0


class AppScaler:
    """Sets a supervisor's live app task count; one change at a time."""

    def __init__(self, sup: Supervisor) -> None:
        self.sup = sup
        self._lock = asyncio.Lock()
        self.changes = 0

    def live(self) -> list[TaskConn]:
        return [c for c in self.sup.apps if c.alive]

    async def set_app_tasks(self, n: int) -> None:
        """Start or stop app task processes until ``n`` are live, then tell them the count."""
        async with self._lock:
            live = self.live()
            if n > len(live):
                await self._start(n - len(live))
            elif n < len(live):
                await asyncio.gather(*(self._retire(c) for c in live[n:]))
            if n != len(live):
                self.changes += 1
            self.broadcast()

    async def stop_task(self, conn: TaskConn) -> None:
        """Stop one given app task (drained like a scale-in), as ECS ``StopTask`` does; tell the rest."""
        async with self._lock:
            await self._retire(conn)
            self.changes += 1
            self.broadcast()

    async def add_task(self) -> None:
        """Start one more app task (a replacement, as the ECS service scheduler starts one)."""
        async with self._lock:
            await self._start(1)
            self.changes += 1
            self.broadcast()

    def broadcast(self) -> None:
        """Tell every live app task how many there are (their slowdown follows)."""
        n = len(self.live())
        for conn in self.live():
            conn.writer.write(encode({"op": "tasks", "n": n}))

    async def _start(self, count: int) -> None:
        want = len(self.sup.apps) + count
        for _ in range(count):
            await self.sup.spawn("app", self.sup.next_app_index())
        deadline = time.monotonic() + START_S
        while len(self.sup.apps) < want:
            if time.monotonic() > deadline:
                raise CapacityError(f"sandbox: new app tasks did not start within {START_S:.0f} s")
            await asyncio.sleep(0.05)

    async def _retire(self, conn: TaskConn) -> None:
        conn.alive = False  # no new requests: the front routes to live tasks only
        deadline = time.monotonic() + DRAIN_S
        while conn.pending and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        conn.writer.close()
        with contextlib.suppress(ValueError):
            self.sup.apps.remove(conn)
        await self.sup.reap(conn.pid)
