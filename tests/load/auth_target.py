"""A loopback target that demands a bearer token (and an API key), and a token command that counts its runs.

The token command is a small Python script: each run prints ``s3cr3t-tok-<n>`` (n = its run count,
kept in a file) so tests can tell how often it ran and which token a request carried. The target
accepts ``tok-<n>`` with ``n >= min_generation``; raising ``min_generation`` revokes older tokens.
A refused request gets 401 with a body echoing the token it carried (the smoke must redact it).
"""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path
from typing import Any

from tests.load.servers import _NoDelayServer

TOKEN_PREFIX = "s3cr3t-tok-"
API_KEY = "SENTINEL-KEY-93f1c0"

TOKEN_SCRIPT = """
import pathlib, sys
p = pathlib.Path(sys.argv[1])
n = int(p.read_text()) + 1 if p.exists() else 1
p.write_text(str(n))
print("{prefix}%d" % n)
"""


def token_command(tmp: Path) -> tuple[str, Path]:
    """(shell command printing a new token per run, the file counting its runs)."""
    script = tmp / "token.py"
    script.write_text(TOKEN_SCRIPT.replace("{prefix}", TOKEN_PREFIX), encoding="utf-8")
    count = tmp / "token-runs.txt"
    return f"{sys.executable} {script} {count}", count


def runs(count_file: Path) -> int:
    return int(count_file.read_text()) if count_file.exists() else 0


class BearerTarget:
    """gevent WSGI app on 127.0.0.1: 200 only with ``Authorization: Bearer <valid token>`` and the API key."""

    def __init__(self, api_key: str | None = API_KEY) -> None:
        self.api_key = api_key
        self.min_generation = 1
        self.status: Counter[int] = Counter()
        self.tokens: Counter[str] = Counter()
        self.iens: list[str] = []
        self.server = _NoDelayServer(("127.0.0.1", 0), self.app, log=None, error_log=None)

    def app(self, environ: dict[str, Any], start_response: Any) -> list[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == "/health":
            return self._answer(start_response, 200, b"ok")
        auth = environ.get("HTTP_AUTHORIZATION", "")
        token = auth.removeprefix("Bearer ")
        self.tokens[token] += 1
        if "/checkins" in path:
            self.iens.append(path.split("/")[-2])
        good = token.startswith(TOKEN_PREFIX) and int(token[len(TOKEN_PREFIX) :] or 0) >= self.min_generation
        if self.api_key is not None and environ.get("HTTP_X_API_KEY") != self.api_key:
            return self._answer(start_response, 403, b"missing api key")
        if not good:
            return self._answer(start_response, 401, f"invalid token {token!r}".encode())
        return self._answer(start_response, 200, b'{"ok": true}')

    def _answer(self, start_response: Any, code: int, body: bytes) -> list[bytes]:
        self.status[code] += 1
        start_response(f"{code} X", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
        return [body]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}"

    def __enter__(self) -> BearerTarget:
        self.server.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.stop(timeout=1)
