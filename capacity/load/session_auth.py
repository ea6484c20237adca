"""Tokens per session (``[target.auth] scope = "session"``): the token command run once per session.

CHIP fetches a token before its calls; a run-wide token that is always warm hides that cost. With
this scope a session's first call waits for a token of its own: waiting sessions queue here and
``session_fetches`` fetcher greenlets run the command (``capacity.load.auth.fetch_token``) one session
at a time each, so a slow token service can never start an unbounded number of processes. The fetch
happens before the session's first call is scheduled, so request latencies stay the target's while
the session's duration includes the token. A failed fetch fails the session at its first step.
Separate from ``capacity.load.auth`` (the run-wide token and its 401 refresh) on purpose.
"""

from __future__ import annotations

from collections.abc import Callable

import gevent
from gevent.queue import Queue

from capacity.core.errors import CapacityError
from capacity.load.auth import fetch_token
from capacity.plan.target import Auth

Done = Callable[[object, dict[str, str] | None], None]
"""Called with the session and its token header (None when the fetch failed)."""


class SessionTokens:
    """Fetches one token per session on a bounded pool of greenlets; ``fetches``/``failures`` count them."""

    def __init__(self, auth: Auth, cwd: str | None = None, fetch: Callable[[Auth, str | None], str] = fetch_token):
        self.auth = auth
        self.cwd = cwd
        self._fetch = fetch
        self.fetches = 0
        self.failures = 0
        self.waiting = 0
        self._queue: Queue[tuple[object, Done] | None] = Queue()
        self._workers: list[gevent.Greenlet] = []

    def start(self) -> None:
        if not self._workers:
            self._workers = [gevent.spawn(self._loop) for _ in range(self.auth.session_fetches)]

    def request(self, sess: object, done: Done) -> None:
        """Queue ``sess`` for a token; ``done(sess, headers)`` runs in a fetcher greenlet when it comes."""
        self.waiting += 1
        self._queue.put((sess, done))

    def _loop(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            sess, done = item
            self.waiting -= 1
            try:
                value = self._fetch(self.auth, self.cwd)
            except CapacityError:
                self.failures += 1
                done(sess, None)
                continue
            self.fetches += 1
            done(sess, {self.auth.header: value})

    def stop(self) -> None:
        """Forget queued sessions and stop the fetchers (a stage's end)."""
        while not self._queue.empty():
            self._queue.get_nowait()
        self.waiting = 0
        gevent.killall(self._workers, block=False)
        self._workers = []
