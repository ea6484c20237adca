"""One token for the whole run: fetched by ``[target.auth] command``, shared by every slot and worker.

The ``TokenHolder`` is what requests read: it writes the formatted header value into the header dicts
the executors send (registered once with ``attach``), so a request costs no lock and no formatting.
The ``TokenRefresher`` lives in the process that owns the token (the driver's; with workers, the
master's): it runs the command, refreshes every ``refresh_s`` and once after a 401, and hands each
new value on (to the local holder and, through ``on_new``, to every worker). Workers never run the
command. Each token is registered with the redactor: it is never printed or stored.

A 401/403 right after a token expired is the token's fault, not the target's: the request is re-sent
once with the fresh token (``TokenHolder.retry_after_refusal``) and counted as an auth retry, so the
seconds around a refresh never read as target errors. A stage whose requests keep being refused is
``invalid: auth`` (``judge.verdict``), never a knee.
"""

from __future__ import annotations

from collections.abc import Callable, MutableMapping

import gevent
from gevent import subprocess as gsubprocess
from gevent.event import Event

from capacity.core.errors import CapacityError
from capacity.plan.secrets import REDACTOR, redact
from capacity.plan.target import Auth

EXCERPT_CHARS = 200


class TokenHolder:
    """The current auth header value and its generation; ``unauthorized`` asks for one refresh per generation."""

    def __init__(self, header: str) -> None:
        self.header = header
        self.value: str | None = None
        self.generation = 0
        self._dicts: list[MutableMapping[str, str]] = []
        self._asked = -1
        self.on_unauthorized: Callable[[int], None] | None = None
        self.retries = 0
        """Requests re-sent once with a fresh token after a 401/403 (``auth_retries``; never errors)."""
        self._fresh = Event()

    def attach(self, headers: MutableMapping[str, str]) -> None:
        """Keep ``headers`` (a dict a client sends as is) carrying the current token."""
        self._dicts.append(headers)
        if self.value is not None:
            headers[self.header] = self.value

    def set(self, value: str, generation: int) -> None:
        REDACTOR.add(value)
        self.value = value
        self.generation = generation
        for d in self._dicts:
            d[self.header] = value
        fresh, self._fresh = self._fresh, Event()
        fresh.set()  # wake the requests waiting to be re-sent with this token

    def unauthorized(self, generation: int) -> None:
        """A 401 on a request sent with ``generation``: the first one of the current token asks for a refresh."""
        if generation != self.generation or self._asked == generation:
            return
        self._asked = generation
        if self.on_unauthorized is not None:
            self.on_unauthorized(generation)

    def fresh_since(self, generation: int, wait_s: float) -> bool:
        """Whether a token newer than ``generation`` is in, waiting up to ``wait_s`` for the refresh a 401
        asked for (the token expired before ``refresh_s``, or a refresh crossed the request in flight)."""
        if self.generation > generation:
            return True
        self._fresh.wait(wait_s)
        return self.generation > generation

    def retry_after_refusal(self, code: int, generation: int) -> bool:
        """A 401/403 on a request sent with ``generation``: ask for a refresh and say whether to re-send it
        once with the fresh token (counted in ``retries``). Only the 401/403 path pays this wait."""
        if code not in AUTH_REFUSED:
            return False
        self.unauthorized(generation)
        if not self.fresh_since(generation, RETRY_WAIT_S):
            return False
        self.retries += 1
        return True


AUTH_REFUSED = (401, 403)
RETRY_WAIT_S = 5.0
"""How long a refused request waits for the fresh token before it counts as an auth failure."""


def fetch_token(auth: Auth, cwd: str | None = None) -> str:
    """Run the token command (in ``cwd``: the experiment file's folder, so a relative script is found
    next to the file); its stripped standard output formatted into the header value."""
    try:
        proc = gsubprocess.run(
            auth.command,
            shell=True,
            capture_output=True,
            timeout=auth.timeout_s,
            stdin=gsubprocess.DEVNULL,
            cwd=cwd,
        )
    except gsubprocess.TimeoutExpired:
        raise CapacityError(f"target.auth.command did not finish within {auth.timeout_s:g} s") from None
    out = proc.stdout.decode("utf-8", "replace").strip()
    if out:
        REDACTOR.add(out)
    if proc.returncode != 0:
        err = redact(proc.stderr.decode("utf-8", "replace").strip())[:EXCERPT_CHARS]
        raise CapacityError(f"target.auth.command exited with code {proc.returncode}: {err or '(no stderr)'}")
    if not out:
        raise CapacityError("target.auth.command printed no token on its standard output")
    return auth.format.replace("{token}", out)


class TokenRefresher:
    """Owns the token: first fetch on ``start``, then every ``refresh_s`` and once per generation on a 401."""

    def __init__(
        self,
        auth: Auth,
        holder: TokenHolder,
        *,
        on_new: Callable[[str, int], None] | None = None,
        cwd: str | None = None,
        fetch: Callable[[Auth, str | None], str] = fetch_token,
    ) -> None:
        self.auth = auth
        self.holder = holder
        self.on_new = on_new
        self._fetch = fetch
        self.cwd = cwd
        self._wake = Event()
        self._loop: gevent.Greenlet | None = None
        self.fetches = 0
        self.failures: list[str] = []
        holder.on_unauthorized = self.request_refresh

    def refresh(self) -> None:
        """Fetch a token now and hand it on (raises ``CapacityError`` when the command fails)."""
        value = self._fetch(self.auth, self.cwd)
        self.fetches += 1
        generation = self.holder.generation + 1
        self.holder.set(value, generation)
        if self.on_new is not None:
            self.on_new(value, generation)

    def start(self) -> None:
        """The first token (failures are errors before any load), then the refresh loop."""
        if self._loop is not None:
            return
        self.refresh()
        self._loop = gevent.spawn(self._run)

    def request_refresh(self, generation: int) -> None:
        if generation == self.holder.generation:
            self._wake.set()

    def _run(self) -> None:
        while True:
            self._wake.wait(self.auth.refresh_s)
            self._wake.clear()
            try:
                self.refresh()
            except CapacityError as exc:  # keep the old token; its requests will show the failure as 401s
                self.failures.append(str(exc))
                gevent.sleep(min(30.0, self.auth.refresh_s))

    def close(self) -> None:
        if self._loop is not None:
            self._loop.kill(block=False)
            self._loop = None
