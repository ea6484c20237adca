"""Tiny loopback HTTP servers for the load tests: fixed delay, stall on demand, request log."""

from __future__ import annotations

import socket
import time
from collections import Counter
from typing import Any

import gevent
from gevent.pywsgi import WSGIServer


class _NoDelayServer(WSGIServer):
    """pywsgi writes headers and body separately: without TCP_NODELAY, Nagle adds ~40 ms."""

    def handle(self, sock: Any, address: Any) -> None:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        super().handle(sock, address)


class DelayServer:
    """gevent WSGI app on 127.0.0.1:<free port>; every request waits ``delay_s`` (and any stall)."""

    def __init__(self, delay_s: float = 0.0, status: int = 200, *, tls: tuple[str, str] | None = None) -> None:
        """``tls``: (certfile, keyfile) to serve https."""
        self.delay_s = delay_s
        self.scheme = "https" if tls else "http"
        self.status = status
        self.stall_until = 0.0
        self.count = 0
        self.paths: Counter[str] = Counter()
        self.bodies: list[bytes] = []
        self.keep_bodies = False
        ssl_args = {"certfile": tls[0], "keyfile": tls[1]} if tls else {}
        self.server = _NoDelayServer(("127.0.0.1", 0), self.app, log=None, error_log=None, **ssl_args)

    def app(self, environ: dict[str, Any], start_response: Any) -> list[bytes]:
        self.count += 1
        path = environ.get("PATH_INFO", "")
        self.paths[f"{environ['REQUEST_METHOD']} {path}"] += 1
        if self.keep_bodies:
            self.bodies.append(environ["wsgi.input"].read())
        wait = max(self.delay_s, self.stall_until - time.time())
        if wait > 0:
            gevent.sleep(wait)
        start_response(f"{self.status} X", [("Content-Type", "text/plain"), ("Content-Length", "2")])
        return [b"ok"]

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.server.server_port}"

    def __enter__(self) -> DelayServer:
        self.server.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.stop(timeout=1)
