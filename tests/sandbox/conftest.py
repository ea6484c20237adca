"""Shared helpers for the sandbox tests: tiny HTTP calls and Datadog-style metric queries."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any


def http(
    base_url: str, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None
) -> tuple[int, Any]:
    req = urllib.request.Request(base_url + path, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as exc:
        raw = exc.read()
        try:
            return exc.code, json.loads(raw)
        except ValueError:
            return exc.code, raw.decode(errors="replace")


def query(base_url: str, q: str, start: int, end: int) -> dict[str, Any]:
    params = urllib.parse.urlencode({"from": start, "to": end, "query": q})
    status, body = http(base_url, "GET", f"/api/v1/query?{params}")
    assert status == 200, body
    return body


def wait_for_second(after: float) -> None:
    """Sleep until metrics for the second containing ``after`` have been reported (next second + margin)."""
    target = int(after) + 1 + 0.6
    time.sleep(max(0.0, target - time.time()))


def values(series: dict[str, Any]) -> list[float]:
    return [p[1] for p in series["pointlist"]]
