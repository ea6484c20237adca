"""The one check that a URL is one we may send HTTP to: ``http`` or ``https`` with a host.

Used for the load target (experiment file and driver) and the metrics API; each caller words the
error for its input (a key in a file, a flag) and picks the exception its layer raises.
"""

from __future__ import annotations

from urllib.parse import SplitResult, urlsplit


def is_http_url(url: str) -> bool:
    """True for ``http(s)://host[:port][/path]``."""
    parts = urlsplit(url)
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def check_http_url(url: str, where: str = "", *, error: type[Exception] = ValueError) -> SplitResult:
    """The URL's parts; raises ``error`` (a one-line message starting with ``where``) when it is not http(s)."""
    if not is_http_url(url):
        prefix = f"{where}: " if where else ""
        raise error(f"{prefix}must be an http(s) URL (http(s)://host[:port]), got {url!r}")
    return urlsplit(url)
