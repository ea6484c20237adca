"""Distributed without leaking (issue 21): record stripes leased once per run, a master on loopback unless
the user confirms what travels in clear."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from capacity.core.errors import CapacityError
from capacity.load.leases import StripeLeases, check_master_bind
from capacity.load.pool import stripe
from capacity.plan.testdata import Record


def records(n: int) -> list[Record]:
    return [Record(sta3n="442", dfn=str(i), ien=str(i), clinic="1") for i in range(n)]


def test_a_reconnecting_worker_gets_a_fresh_stripe_that_overlaps_no_live_one() -> None:
    leases = StripeLeases(expected=2, spares=1)
    assert [leases.lease("w1"), leases.lease("w2")] == [0, 1]
    assert leases.lease("w1") == 0  # a repeated hello keeps its stripe
    assert leases.lease("w2-again") == 2  # w2 reconnected under a new id: the spare, never stripe 1
    assert leases.lease("w2-third") is None and "no fresh test-record stripe left" in leases.refusal()
    recs = records(30)
    shares = [set(stripe(recs, i, leases.count)) for i in sorted(leases.holders.values())]
    assert all(not (a & b) for i, a in enumerate(shares) for b in shares[i + 1 :])


@settings(derandomize=True, max_examples=60, deadline=None)
@given(expected=st.integers(1, 6), spares=st.integers(0, 4), hellos=st.lists(st.integers(0, 12), max_size=30))
def test_no_two_workers_ever_hold_the_same_stripe(expected: int, spares: int, hellos: list[int]) -> None:
    leases = StripeLeases(expected, spares)
    for h in hellos:
        got = leases.lease(f"w{h}")
        assert got is None or 0 <= got < leases.count
    held = list(leases.holders.values())
    assert len(held) == len(set(held)) <= expected + spares


def test_the_master_stays_on_loopback_unless_cleartext_is_confirmed() -> None:
    for host in ("127.0.0.1", "::1", "localhost"):
        check_master_bind(host, cleartext_confirmed=False)
    with pytest.raises(CapacityError) as err:
        check_master_bind("0.0.0.0", cleartext_confirmed=False)
    text = str(err.value)
    assert text.startswith("--master-bind 0.0.0.0: Locust's worker socket is unencrypted")
    assert "the bearer token, the endpoint headers and the test records" in text and "--allow-cleartext-workers" in text
    check_master_bind("10.0.0.5", cleartext_confirmed=True)


def test_the_cli_refuses_a_wide_master_bind_with_one_line_and_exit_2(repo) -> None:  # type: ignore[no-untyped-def]
    from tests.conftest import run_cli

    proc = run_cli(
        "search", "--target", "http://127.0.0.1:9", "--endpoint", "GET /a", "--metrics", "none",
        "--workers", "1", "--master-bind", "0.0.0.0",
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    assert "--master-bind 0.0.0.0: Locust's worker socket is unencrypted" in proc.stderr
    assert "Traceback" not in proc.stderr
