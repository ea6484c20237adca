"""What one Datadog HTTP call can end in, told apart by status and exception type (never by message).

The source (``capacity.observe.datadog``) retries what these call transient and reports the rest.
"""

from __future__ import annotations

from typing import Any

import urllib3


class _AuthRefused(Exception):
    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


class _Rejected(Exception):
    """A 4xx other than auth/429: the request itself is wrong (bad query); retrying cannot help."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(f"{status}: {detail}")
        self.status = status
        self.detail = detail


class _Unavailable(Exception):
    """5xx, 429 or timeouts that outlasted the retries, or an unreadable answer."""


def _header(headers: Any, name: str) -> str | None:
    if not headers:
        return None
    for k, v in dict(headers).items():
        if str(k).lower() == name.lower():
            return str(v)
    return None


def _timed_out(exc: BaseException) -> bool:
    """A timeout by its type (urllib3 wraps it in ``MaxRetryError.reason``), never by its message."""
    if isinstance(exc, urllib3.exceptions.MaxRetryError) and exc.reason is not None:
        exc = exc.reason
    if isinstance(exc, urllib3.exceptions.NewConnectionError):  # a refused connection (a subclass, for history)
        return False
    return isinstance(exc, urllib3.exceptions.TimeoutError | TimeoutError)


def _detail(body: Any) -> str:
    """A short, key-free description of an error body (Datadog: ``{"errors": [...]}``)."""
    if isinstance(body, dict) and isinstance(body.get("errors"), list) and body["errors"]:
        return "; ".join(str(e) for e in body["errors"])[:300]
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    text = str(body or "").strip().replace("\n", " ")
    return text[:300] or "no detail"
