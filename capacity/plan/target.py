"""``[target]``: where load goes, its headers and its token, with ``${NAME}`` references kept as written.

Any string in ``[target]`` may refer to an environment variable as ``${NAME}``. The model keeps the
reference (so the stored experiment never holds a secret); ``live_target`` fills the values in at the
edge, just before the load driver is built.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import Field, field_validator

from capacity.core.errors import ExperimentError
from capacity.core.urls import is_http_url
from capacity.plan.base import PositiveFloat, Strict
from capacity.plan.secrets import REF, expand

SANDBOX_URL = "sandbox://"
"""``target.base_url`` value meaning: start the built-in sandbox and aim at it."""


class Auth(Strict):
    """A bearer-style token: ``command`` prints it; one token for the whole run, refreshed, never stored."""

    command: str = Field(min_length=1)
    """Shell command whose standard output is the token (e.g. the team's CHIP token script)."""
    header: str = Field("Authorization", min_length=1)
    format: str = "Bearer {token}"
    """The header's value; ``{token}`` is replaced by the command's output (stripped)."""
    refresh_s: PositiveFloat = 1500.0
    """Run the command again this often (before the token expires); also once after a 401."""
    timeout_s: PositiveFloat = 60.0
    """The command's own time limit."""
    scope: Literal["run", "session"] = "run"
    """``run``: one token for the whole run; ``session``: each session (``[[workload.flows]]`` run as
    sessions) runs the command for a token of its own before its first call, as CHIP fetches per call."""
    session_fetches: int = Field(4, ge=1, le=64)
    """``scope = "session"``: token commands running at once per generator process (a bounded pool)."""

    @field_validator("format")
    @classmethod
    def _has_token(cls, v: str) -> str:
        if "{token}" not in v:
            raise ValueError(f"must contain '{{token}}', got {v!r}")
        return v


class Target(Strict):
    """Where load goes. Hosts outside ``allowed_hosts`` are refused unless allowed on the CLI."""

    base_url: str
    allowed_hosts: list[str] = Field(default_factory=lambda: ["127.0.0.1", "localhost", "::1"])
    timeout_s: PositiveFloat = 10.0
    headers: dict[str, str] = Field(default_factory=dict)
    health_path: str = "/health"
    verify_tls: bool = True
    """Check an https target's certificate; false only for a staging host with a self-signed one."""
    auth: Auth | None = None

    @field_validator("base_url")
    @classmethod
    def _url(cls, v: str) -> str:
        if v == SANDBOX_URL:
            return v
        # a ${NAME} may stand for any part: check the shape with a stand-in host, again once filled in
        if not is_http_url(REF.sub("x", v)):
            raise ValueError(f"must be an http(s) URL or {SANDBOX_URL!r}, got {v!r}")
        return v.rstrip("/")

    @property
    def is_sandbox(self) -> bool:
        return self.base_url == SANDBOX_URL


@dataclass(frozen=True)
class LiveTarget:
    """``[target]`` with every ``${NAME}`` filled in: for the load driver only, never stored or printed."""

    base_url: str
    headers: dict[str, str]
    allowed_hosts: tuple[str, ...]
    auth: Auth | None


def live_target(target: Target, base_url: str, *, file: str | None = None) -> LiveTarget:
    """Fill in ``base_url`` (the file's, or the sandbox's), the headers, hosts and token command.

    A variable that is not set is an error naming it (exit 2), before anything is sent.
    """
    url = expand(base_url, file=file, key="target.base_url")
    if not is_http_url(url):
        raise ExperimentError("not an http(s) URL once ${NAME}s are filled in", file=file, key="target.base_url")
    headers = {k: expand(v, file=file, key=f"target.headers.{k}") for k, v in target.headers.items()}
    hosts = tuple(expand(h, file=file, key="target.allowed_hosts") for h in target.allowed_hosts)
    auth = target.auth
    if auth is not None:
        auth = auth.model_copy(update={"command": expand(auth.command, file=file, key="target.auth.command")})
    return LiveTarget(url.rstrip("/"), headers, hosts, auth)
