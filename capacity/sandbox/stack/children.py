"""The stack's child processes (redis-server, puma, sidekiq): started, waited for, stopped for good.

Each child logs to a file in the stack's temporary folder (its last lines make the error when it
fails to start), runs in its own process group (so Ctrl-C reaches the supervisor, which stops
everything in order) and asks Linux to kill it if the supervisor dies first.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from capacity.core.errors import CapacityError
from capacity.sandbox.listen import HOST
from capacity.sandbox.procstats import die_with_parent

START_TIMEOUT_S = 30.0
STOP_GRACE_S = 5.0


class StackStartError(CapacityError):
    """A child process exited or did not answer during start."""


def free_port() -> int:
    """A currently free TCP port on 127.0.0.1 (for children that must be told their port)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def _in_child() -> None:
    die_with_parent(signal.SIGKILL)


@dataclass
class Child:
    name: str
    proc: asyncio.subprocess.Process
    log_path: Path

    @property
    def pid(self) -> int:
        return self.proc.pid

    def log_tail(self, lines: int = 3) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return " | ".join(ln.strip() for ln in text.splitlines()[-lines:] if ln.strip())

    async def wait_ready(self, probe: Callable[[], Awaitable[bool]], timeout_s: float = START_TIMEOUT_S) -> None:
        """Poll ``probe`` until it is true; a clear error if the child exits or the time runs out."""
        deadline = time.monotonic() + timeout_s
        while True:
            if self.proc.returncode is not None:
                raise StackStartError(
                    f"sandbox stack: {self.name} exited during start (code {self.proc.returncode}): "
                    f"{self.log_tail() or 'no output'}"
                )
            with contextlib.suppress(OSError, ConnectionError, asyncio.TimeoutError, ValueError):
                if await asyncio.wait_for(probe(), timeout=2.0):
                    return
            if time.monotonic() > deadline:
                raise StackStartError(
                    f"sandbox stack: {self.name} did not answer within {timeout_s:.0f} s "
                    f"(log: {self.log_tail() or 'empty'})"
                )
            await asyncio.sleep(0.1)

    async def stop(self) -> None:
        """SIGTERM, then SIGKILL after a grace period; idempotent."""
        if self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.terminate()
            try:
                await asyncio.wait_for(self.proc.wait(), timeout=STOP_GRACE_S)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    self.proc.kill()
        await self.proc.wait()


async def spawn(name: str, argv: list[str], env: dict[str, str], log_dir: Path, *, user: str | None = None) -> Child:
    """Start one child with stdout and stderr in ``log_dir/<name>.log`` (as ``user`` when given: the
    parent-death signal is set after the switch, so it still holds)."""
    log_path = log_dir / f"{name}.log"
    with log_path.open("wb") as log:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=log,
            stderr=asyncio.subprocess.STDOUT,
            env=env,
            cwd=str(log_dir),
            process_group=0,
            preexec_fn=_in_child,
            user=user,
        )
    return Child(name, proc, log_path)
