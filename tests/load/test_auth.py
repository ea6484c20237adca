"""Tokens (issue 14 item 2): one token shared by every slot, refreshed on schedule and once on a 401."""

from __future__ import annotations

from pathlib import Path

import gevent
import pytest

from capacity.core.errors import CapacityError
from capacity.load.auth import TokenHolder, TokenRefresher
from capacity.load.driver import LoadDriver, StageSpec
from capacity.load.settings import GeneratorSettings, WorkerSettings
from capacity.plan.experiment import Auth, Workload
from capacity.plan.secrets import redact
from tests.load.auth_target import API_KEY, TOKEN_PREFIX, BearerTarget, runs, token_command

WL = Workload.model_validate(
    {
        "endpoints": [{"name": "a", "path": "/a"}, {"name": "b", "method": "POST", "path": "/b", "body": "{}"}],
        "test_data": {"source": "none"},
    }
)
TWO = WorkerSettings(workers=2)


def test_holder_asks_for_one_refresh_per_generation() -> None:
    holder = TokenHolder("Authorization")
    asked: list[int] = []
    holder.on_unauthorized = asked.append
    d: dict[str, str] = {}
    holder.attach(d)
    holder.set("Bearer x1", 1)
    assert d == {"Authorization": "Bearer x1"}
    holder.unauthorized(1)
    holder.unauthorized(1)
    holder.unauthorized(0)  # an old token's 401 says nothing about the current one
    assert asked == [1]
    holder.set("Bearer x2", 2)
    holder.unauthorized(2)
    assert asked == [1, 2] and d["Authorization"] == "Bearer x2"


def test_token_command_failure_is_one_redacted_line(tmp_path: Path) -> None:
    cmd = "echo s3cr3t-partial-value; echo 'boom s3cr3t-partial-value' >&2; exit 3"
    with pytest.raises(CapacityError) as ei:
        TokenRefresher(Auth(command=cmd), TokenHolder("Authorization")).start()
    assert "exited with code 3" in str(ei.value) and "s3cr3t" not in str(ei.value)
    assert "***" in str(ei.value)
    with pytest.raises(CapacityError, match="printed no token"):
        TokenRefresher(Auth(command="true"), TokenHolder("Authorization")).start()


@pytest.mark.slow  # real requests in real time
def test_every_request_carries_the_shared_token_and_a_401_refreshes_once(tmp_path: Path) -> None:
    cmd, count = token_command(tmp_path)
    with BearerTarget() as srv:
        auth = Auth(command=cmd, refresh_s=1000)
        with LoadDriver(GeneratorSettings.of(srv.url, WL, headers={"X-Api-Key": API_KEY}), auth=auth) as d:
            d.preflight()
            d.smoke()
            assert runs(count) == 1

            def revoke() -> None:
                gevent.sleep(1.5)
                srv.min_generation = 2  # the server drops token 1 mid-stage

            g = gevent.spawn(revoke)
            m = d.run_stage(StageSpec(0, 100.0, 3.0, 0.5, max_inflight=20))
            g.join()
    assert runs(count) == 2, "the first 401 triggers exactly one refresh"
    assert set(srv.tokens) == {f"{TOKEN_PREFIX}1", f"{TOKEN_PREFIX}2"}
    assert srv.tokens[f"{TOKEN_PREFIX}2"] > 100  # the rest of the stage ran on the new token
    assert 1 <= srv.status[401] <= 25  # only requests in flight or sent before the refresh landed
    # each refused request was re-sent once with the fresh token: an auth retry, not an error (issue 21)
    assert m.status_codes.get("401", 0) == 0 and m.errors == 0
    assert m.auth_retries == srv.status[401]
    assert redact(f"Bearer {TOKEN_PREFIX}2") == "***"


@pytest.mark.slow  # real requests in real time
def test_token_is_refreshed_on_schedule_without_any_401(tmp_path: Path) -> None:
    cmd, count = token_command(tmp_path)
    with BearerTarget() as srv:
        auth = Auth(command=cmd, refresh_s=1.0)
        with LoadDriver(GeneratorSettings.of(srv.url, WL, headers={"X-Api-Key": API_KEY}), auth=auth) as d:
            d.preflight()
            m = d.run_stage(StageSpec(0, 50.0, 3.5, 0.5, max_inflight=10))
            srv.min_generation = runs(count)  # only the newest token from here on
            m2 = d.run_stage(StageSpec(1, 50.0, 1.0, 0.2, max_inflight=10))
    assert 3 <= runs(count) <= 6
    assert srv.status[401] == 0 and m.errors == 0 and m2.errors == 0
    assert len(srv.tokens) == runs(count)


@pytest.mark.slow
def test_workers_share_the_masters_token_and_a_401_on_a_worker_refreshes_once(tmp_path: Path) -> None:
    cmd, count = token_command(tmp_path)
    with BearerTarget() as srv:
        auth = Auth(command=cmd, refresh_s=1000)
        with LoadDriver(GeneratorSettings.of(srv.url, WL, headers={"X-Api-Key": API_KEY}), auth=auth, workers=TWO) as d:
            d.preflight()
            d.start()
            assert runs(count) == 1

            def revoke() -> None:
                gevent.sleep(2.0)
                srv.min_generation = 2

            g = gevent.spawn(revoke)
            d.run_stage(StageSpec(0, 100.0, 4.0, 0.5, max_inflight=20))
            g.join()
    assert runs(count) == 2, "workers never run the command; the master refreshes once for their 401s"
    assert srv.tokens[f"{TOKEN_PREFIX}2"] > 100
    assert 1 <= srv.status[401] <= 40


@pytest.mark.slow  # real requests in real time, two worker processes
def test_with_workers_refused_requests_are_retried_and_counted_not_errors(tmp_path: Path) -> None:
    cmd, count = token_command(tmp_path)
    with BearerTarget() as srv:
        auth = Auth(command=cmd, refresh_s=1000)
        with LoadDriver(GeneratorSettings.of(srv.url, WL, headers={"X-Api-Key": API_KEY}), auth=auth, workers=TWO) as d:
            d.preflight()
            d.start()

            def revoke() -> None:
                gevent.sleep(1.5)
                srv.min_generation = 2  # the server drops token 1 mid-stage

            g = gevent.spawn(revoke)
            m = d.run_stage(StageSpec(0, 100.0, 3.0, 0.5, max_inflight=20))
            g.join()
    assert runs(count) == 2 and srv.status[401] >= 1
    assert m.status_codes.get("401", 0) == 0 and m.errors == 0
    assert m.auth_retries == srv.status[401]  # summed over the workers
