"""The in-process driver against loopback servers: rate, latency truth, drops, data, signals."""

from __future__ import annotations

import json
import os
import signal
import textwrap
import time
from pathlib import Path

import gevent
import pytest

from capacity.core.errors import CapacityError, TargetUnreachableError
from capacity.core.models import SecondSample
from capacity.load.driver import LoadDriver, StageSpec
from capacity.load.settings import GeneratorSettings
from capacity.plan.experiment import Workload
from tests.load.servers import DelayServer


def wl(*endpoints: dict[str, object], **test_data: object) -> Workload:
    return Workload.model_validate({"endpoints": list(endpoints), "test_data": test_data or {"records": 500}})


@pytest.mark.slow  # sends real load in real time
def test_offered_rate_exact_against_300ms_server(slow_server: DelayServer) -> None:
    with LoadDriver(GeneratorSettings.of(slow_server.url, wl({"name": "a", "path": "/a"}))) as d:
        m = d.run_stage(StageSpec(0, 100.0, 6.0, 1.0, max_inflight=100))
    assert abs(m.offered_rps - 100.0) / 100.0 < 0.01
    assert m.requests == 500 and m.dropped == 0 and m.errors == 0
    assert abs(m.achieved_rps - 100.0) / 100.0 < 0.02
    p50 = m.percentile_ms(50)
    assert p50 is not None and 300 <= p50 < 400
    assert [s.phase for s in m.seconds] == ["warmup"] + ["measure"] * 5
    assert all(abs(s.offered - 100) <= 1 for s in m.seconds)
    assert m.generator_cpu_max_pct is not None and m.status_codes == {"200": 500}


@pytest.mark.slow  # sends real load in real time
def test_stall_shows_in_latency_from_intended_start_and_drops() -> None:
    with DelayServer(0.01) as srv, LoadDriver(GeneratorSettings.of(srv.url, wl({"name": "a", "path": "/a"}))) as d:

        def stall() -> None:
            gevent.sleep(1.5)
            srv.stall_until = time.time() + 1.0

        g = gevent.spawn(stall)
        m = d.run_stage(StageSpec(0, 100.0, 4.0, 0.0, max_inflight=40))
        g.join()
    p99 = m.percentile_ms(99)
    assert p99 is not None and p99 >= 900  # a 1 s pause is visible: no coordinated omission
    assert m.dropped >= 30  # 100 arrivals/s for 1 s, only 40 slots
    assert m.max_inflight_seen == 40
    assert sum(s.dropped for s in m.seconds) == m.dropped
    assert max(s.max_ms or 0 for s in m.seconds) >= 900


@pytest.mark.slow  # sends real load in real time
def test_weights_honoured_and_bodies_rendered() -> None:
    workload = wl(
        {
            "name": "status",
            "method": "POST",
            "path": "/api/v1/vista-sites/{sta3n}/patient_demographics_status",
            "body": '{"patientDfn": "{dfn}", "demographicsConfirmationPayload": {}}',
            "rpm": 7839,
        },
        {"name": "summary", "path": "/appointments/{ien}/summary", "rpm": 588},
    )
    with DelayServer(0.0) as srv, LoadDriver(GeneratorSettings.of(srv.url, workload)) as d:
        srv.keep_bodies = True
        m = d.run_stage(StageSpec(0, 300.0, 3.0, 0.0))
    status = sum(n for k, n in srv.paths.items() if k.startswith("POST /api/v1/vista-sites/"))
    summary = sum(n for k, n in srv.paths.items() if k.endswith("/summary"))
    share = 7839 / (7839 + 588)
    assert status + summary == 900
    assert abs(status / 900 - share) / share < 0.05
    assert abs(m.endpoints["summary"].requests / 900 - (1 - share)) / (1 - share) < 0.05
    body = json.loads(srv.bodies[0])
    assert body["patientDfn"].isdigit() and body["demographicsConfirmationPayload"] == {}


@pytest.mark.slow  # sends real load in real time
def test_consuming_endpoint_never_reuses_records_and_reports_exhaustion(
    caplog: pytest.LogCaptureFixture,
) -> None:
    workload = wl(
        {"name": "checkin", "method": "POST", "path": "/appointments/{ien}/checkins", "consumes": True},
        records=150,
    )
    with DelayServer(0.0) as srv, LoadDriver(GeneratorSettings.of(srv.url, workload)) as d:
        m = d.run_stage(StageSpec(0, 100.0, 2.0, 0.0))
    sent = [k for k in srv.paths if k.endswith("/checkins")]
    assert len(sent) == sum(srv.paths.values()) == 150  # each appointment checked in once
    assert all(srv.paths[k] == 1 for k in sent)
    assert m.records_exhausted == 50
    assert m.status_codes["test-data exhausted"] == 50 and m.errors == 50
    assert any("exhausted" in w for w in m.warnings)


@pytest.mark.slow  # sends real load in real time
def test_locustfile_task_weights(tmp_path: Path) -> None:
    lf = tmp_path / "lf.py"
    lf.write_text(
        textwrap.dedent("""
        from locust import FastHttpUser, task

        class U(FastHttpUser):
            @task(3)
            def heavy(self):
                self.client.get("/heavy")

            @task(1)
            def light(self):
                with self.client.get("/light", catch_response=True) as r:
                    r.failure("marked bad")
    """)
    )
    w = Workload.model_validate({"locustfile": str(lf)})
    with DelayServer(0.0) as srv, LoadDriver(GeneratorSettings.of(srv.url, w)) as d:
        m = d.run_stage(StageSpec(0, 200.0, 2.0, 0.0))
    heavy, light = srv.paths["GET /heavy"], srv.paths["GET /light"]
    assert heavy + light == 400
    assert abs(heavy / 400 - 0.75) / 0.75 < 0.05
    assert m.endpoints["U.light"].errors == light  # catch_response failures are errors
    assert m.errors == light and m.ok == heavy


def test_unknown_placeholder_is_a_clear_error() -> None:
    with pytest.raises(CapacityError, match=r"endpoint 'bad' path: unknown placeholder \{patient\}"):
        LoadDriver(GeneratorSettings.of("http://127.0.0.1:9", wl({"name": "bad", "path": "/p/{patient}"})))


def test_unreachable_target_one_line() -> None:
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens here now
    with LoadDriver(GeneratorSettings.of(f"http://127.0.0.1:{port}", wl({"name": "a", "path": "/a"}))) as d:
        with pytest.raises(TargetUnreachableError) as err:
            d.preflight()
        assert d.probe_latency_ms(2) is None
    msg = str(err.value)
    assert "\n" not in msg and f"127.0.0.1:{port}" in msg and "unreachable" in msg


@pytest.mark.slow  # sends real load in real time
def test_sigint_during_stage_returns_interrupted_quickly(fast_server: DelayServer) -> None:
    previous = signal.getsignal(signal.SIGINT)
    with LoadDriver(GeneratorSettings.of(fast_server.url, wl({"name": "a", "path": "/a"}))) as d:

        def interrupt() -> None:
            gevent.sleep(1.2)
            os.kill(os.getpid(), signal.SIGINT)

        g = gevent.spawn(interrupt)
        t0 = time.monotonic()
        m = d.run_stage(StageSpec(0, 50.0, 30.0, 0.0))
        took = time.monotonic() - t0
        g.join()
    assert m.interrupted and m.aborted == "interrupted"
    assert took < 3.0
    assert 1 <= len(m.seconds) <= 3
    assert signal.getsignal(signal.SIGINT) is previous  # handlers restored


@pytest.mark.slow  # sends real load in real time
def test_on_second_abort_stops_at_once(fast_server: DelayServer) -> None:
    seen: list[int] = []

    def judge(samples: list[SecondSample]) -> str | None:
        seen.append(len(samples))
        return "guard:p95" if len(samples) == 2 else None

    with LoadDriver(GeneratorSettings.of(fast_server.url, wl({"name": "a", "path": "/a"}))) as d:
        t0 = time.monotonic()
        m = d.run_stage(StageSpec(0, 50.0, 20.0, 0.0), on_second=judge)
    assert m.aborted == "guard:p95" and not m.interrupted
    assert seen == [1, 2] and time.monotonic() - t0 < 4.0
    assert fast_server.count <= 130


@pytest.mark.slow  # sends real load in real time
def test_starved_generator_shows_drops_and_cpu() -> None:
    # tiny in-flight cap against a slow target: arrivals find no slot and are dropped, not delayed
    with DelayServer(0.2) as srv, LoadDriver(GeneratorSettings.of(srv.url, wl({"name": "a", "path": "/a"}))) as d:
        m = d.run_stage(StageSpec(0, 100.0, 3.0, 0.0, max_inflight=4))
        assert m.dropped > 150 and m.requests < 100
        assert all(s.generator_cpu_pct is not None for s in m.seconds)
        assert all(s.inflight == 4 for s in m.seconds)
        # far beyond what one process can do: the generator falls behind and drops, CPU shows it
        srv.delay_s = 0.0
        hot = d.run_stage(StageSpec(1, 30_000.0, 2.0, 0.0, max_inflight=500))
    assert hot.dropped > 0 and hot.requests < 0.9 * 60_000
    assert max(s.generator_cpu_pct or 0 for s in hot.seconds) > 40


@pytest.mark.slow  # sends real load in real time
def test_poisson_stage_mean_rate(fast_server: DelayServer) -> None:
    with LoadDriver(GeneratorSettings.of(fast_server.url, wl({"name": "a", "path": "/a"}))) as d:
        m = d.run_stage(StageSpec(0, 200.0, 4.0, 0.0, arrival="poisson", seed=5))
    assert abs(m.requests - 800) < 4 * (800**0.5)  # Poisson count: within 4 sigma
    assert max(s.offered for s in m.seconds) - min(s.offered for s in m.seconds) > 5  # not uniform
