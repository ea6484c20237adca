"""What every sandbox server shares: the loopback listening socket and the shape the CLI drives.

Both the Python stand-in (``supervisor.Supervisor``) and the real stack (``stack.PumaStack``) bind
their port here first, so "port in use" is the same one-line user error before anything starts.
"""

from __future__ import annotations

import errno
import socket
from typing import Protocol

from aiohttp import web

from capacity.core.errors import CapacityError

HOST = "127.0.0.1"


class SandboxServer(Protocol):
    """A running sandbox inside the current asyncio loop: ``start``, then ``stop``."""

    port: int

    @property
    def pids(self) -> list[int]: ...

    async def start(self, port: int = 0) -> None: ...

    async def stop(self) -> None: ...


def bind_port(port: int) -> socket.socket:
    """A listening loopback socket; a port in use is a user error (exit 2)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((HOST, port))
    except OSError as exc:
        sock.close()
        if exc.errno in (errno.EADDRINUSE, errno.EACCES):
            reason = "already in use" if exc.errno == errno.EADDRINUSE else "not permitted"
            raise CapacityError(f"sandbox --port {port}: port {port} on {HOST} is {reason}") from None
        raise CapacityError(f"sandbox --port {port}: cannot bind {HOST}:{port}: {exc.strerror}") from None
    sock.listen(1024)
    sock.setblocking(False)
    return sock


async def serve_front(app: web.Application, sock: socket.socket) -> web.AppRunner:
    """Serve the front (workload routes and the Datadog-compatible endpoint) on the bound socket."""
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    await web.SockSite(runner, sock).start()
    return runner
