"""The fault option ``error_above_rps``: above a known arrival rate the sandbox answers 500, below it never.

The errors come from the front at once (no app task, no service time), so they are independent of the
thread pools: a test can put the failure rate X anywhere, e.g. well below the pool's capacity.
"""

from __future__ import annotations

import time

import pytest

from capacity.plan.sandbox_settings import SandboxSettings
from capacity.sandbox import SandboxConfig, SandboxConfigError, run_sandbox, truth
from tests.conftest import Cli
from tests.sandbox.conftest import http
from tests.sandbox.openloop import open_loop_subprocess

X = 40.0
CFG = SandboxConfig(app_tasks=1, threads=8, service_ms=50, service_dist="const", cpu_ms=0.2, error_above_rps=X)


def test_fault_setting_flows_from_experiment_and_is_validated(cli: Cli) -> None:
    assert SandboxConfig.from_settings(SandboxSettings.model_validate({"error_above_rps": X})).error_above_rps == X
    assert SandboxConfig.from_settings(SandboxSettings.model_validate({})).error_above_rps is None
    assert SandboxConfig.from_json(CFG.to_json()).error_above_rps == X
    with pytest.raises(SandboxConfigError, match=r"error_above_rps \(--error-above-rps\)"):
        SandboxConfig(error_above_rps=0)
    proc = cli("sandbox", "--explain", "--error-above-rps", "-5")
    assert proc.returncode == 2
    assert "--error-above-rps" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


@pytest.mark.slow
def test_errors_only_while_recent_arrivals_exceed_the_rate() -> None:
    # the pool could serve 8 / 0.050 = 160 req/s: every 500 below is the injected fault, not overload
    assert truth(CFG).pool_rps == pytest.approx(160.0)
    with run_sandbox(CFG) as sb:
        below = open_loop_subprocess(sb.base_url, 0.5 * X, 1.2, first=0)
        time.sleep(1.1)  # let the last second's arrivals age out of the window
        above = open_loop_subprocess(sb.base_url, 2.0 * X, 1.6, first=1000)
        # the health check and the metrics API are never failed, even right after the overload
        assert http(sb.base_url, "GET", "/health")[0] == 200
        now = int(time.time())
        assert http(sb.base_url, "GET", f"/api/v1/query?from={now - 5}&to={now}&query=avg:puma.backlog{{*}}")[0] == 200
        time.sleep(1.1)
        after = open_loop_subprocess(sb.base_url, 0.5 * X, 1.2, first=2000)
    assert below.share(500) == 0.0 and after.share(500) == 0.0
    assert all(o.status in (200, 201, 202) for o in below.outcomes + after.outcomes)
    # at 2X the last second holds more than X arrivals from t = 0.5 s on: every later request fails
    late = above.window(0.75)
    assert late and all(o.status == 500 for o in late), sorted({o.status for o in late})
    early = above.window(0.0, 0.4)
    assert early and all(o.status != 500 for o in early)
    # answered by the front without service time (an app task holds every request 50 ms)
    assert sorted(o.latency for o in late)[len(late) // 2] < 0.025
