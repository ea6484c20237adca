"""Test-record stripes leased to load workers, and the guard on where the master listens.

Each worker consumes records from its own stripe (``records[i::count]``), so no appointment is
checked in twice. A stripe is *leased* to one worker for the whole run: a worker that reconnects
comes back under a new id, and the stripe its old self held may be half used, so it gets a stripe
never leased before (of the spares kept for remote workers), or is refused, never an overlapping
one. The stripe count is fixed at the start, so every worker's share keeps the same modulus.

Locust's master/worker socket is unencrypted: the setup message carries the test records' source,
the endpoint headers and the bearer token. The master therefore listens on loopback only, unless
the user confirms (``--allow-cleartext-workers``) that these travel in clear on that network.
"""

from __future__ import annotations

import ipaddress

from capacity.core.errors import CapacityError

CLEARTEXT = "the bearer token, the endpoint headers and the test records"
"""What a worker's setup carries over Locust's unencrypted socket."""


class StripeLeases:
    """Stripe index per worker id: each stripe leased at most once in a run."""

    def __init__(self, expected: int, spares: int = 0) -> None:
        self.count = max(1, expected + spares)
        self.holders: dict[str, int] = {}

    def lease(self, client_id: str) -> int | None:
        """The worker's stripe (the same one on a repeated hello), a fresh one, or None when none is left."""
        if client_id in self.holders:
            return self.holders[client_id]
        taken = set(self.holders.values())
        fresh = next((s for s in range(self.count) if s not in taken), None)
        if fresh is not None:
            self.holders[client_id] = fresh
        return fresh

    def refusal(self) -> str:
        return (
            f"no fresh test-record stripe left: all {self.count} were leased this run (a reconnecting worker "
            "never gets a stripe another worker may have used); start a new run"
        )


def is_loopback(host: str) -> bool:
    if host in ("localhost", ""):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_master_bind(bind: str, *, cleartext_confirmed: bool) -> None:
    """Refuse to listen beyond loopback unless the user confirmed what travels in clear."""
    if is_loopback(bind) or cleartext_confirmed:
        return
    raise CapacityError(
        f"--master-bind {bind}: Locust's worker socket is unencrypted, so {CLEARTEXT} would travel in clear "
        "to any host that connects; bind to 127.0.0.1 (local workers), or confirm with --allow-cleartext-workers "
        "on a network you trust"
    )
