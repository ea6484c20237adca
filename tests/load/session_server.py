"""A loopback JSON server that logs every request's method, path and body, for session tests."""

from __future__ import annotations

import json
import time
from typing import Any

import gevent

from tests.load.servers import _NoDelayServer


class JsonLogServer:
    """Answers ``{"data": {"id": N, "path": PATH}}`` (N counts requests) after ``delay_s``; logs each request."""

    def __init__(self, delay_s: float = 0.0, fail_path: str | None = None) -> None:
        self.delay_s = delay_s
        self.fail_path = fail_path
        self.log: list[tuple[float, str, str, bytes]] = []
        self.server = _NoDelayServer(("127.0.0.1", 0), self.app, log=None, error_log=None)

    def app(self, environ: dict[str, Any], start_response: Any) -> list[bytes]:
        path = environ.get("PATH_INFO", "")
        query = environ.get("QUERY_STRING", "")
        body = environ["wsgi.input"].read()
        full = path + ("?" + query if query else "")
        self.log.append((time.monotonic(), environ["REQUEST_METHOD"], full, body))
        if self.delay_s:
            gevent.sleep(self.delay_s)
        status = "500 X" if self.fail_path and self.fail_path in path else "200 OK"
        out = json.dumps({"data": {"id": len(self.log), "path": path}}).encode()
        start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(out)))])
        return [out]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}"

    def __enter__(self) -> JsonLogServer:
        self.server.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.stop(timeout=1)
