"""Against truth: an open-loop client at fixed rates sees the capacity the formula states.

2 app tasks x 4 threads / 50 ms = 160 req/s. Below it, goodput = offered and latency ~ the service
time; at 1.3x and 2x goodput plateaus within 5% of 160 while backlog and 503s grow.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from capacity.sandbox import RunningSandbox, SandboxConfig, run_sandbox, truth
from tests.sandbox.conftest import query, values, wait_for_second
from tests.sandbox.openloop import open_loop_subprocess

pytestmark = pytest.mark.slow

CFG = SandboxConfig(
    app_tasks=2,
    threads=4,
    backlog=16,
    service_ms=50,
    service_dist="const",
    cpu_ms=0.5,
    sidekiq_tasks=1,
    sidekiq_concurrency=20,
    job_ms=50,
    records=20_000,
)
FORMULA = truth(CFG).pool_rps
WARMUP, DURATION = 1.5, 5.0
END = DURATION - 0.5  # leave the tail out: arrivals stop at DURATION


@pytest.fixture(scope="module")
def sb() -> Iterator[RunningSandbox]:
    assert pytest.approx(160.0) == FORMULA
    with run_sandbox(CFG) as running:
        yield running


def test_below_capacity_goodput_follows_offered(sb: RunningSandbox) -> None:
    run = open_loop_subprocess(sb.base_url, 0.5 * FORMULA, DURATION, first=0, count=20_000)
    assert run.offered(WARMUP, END) == pytest.approx(80.0, rel=0.03)
    assert run.goodput(WARMUP, END) == pytest.approx(run.offered(WARMUP, END), rel=0.05)
    assert run.share(503) == 0.0
    assert 0.050 <= run.latency_pct(0.5, WARMUP) <= 0.050 + 0.030  # service time + a little overhead


@pytest.mark.parametrize(("factor", "first"), [(1.3, 2_000), (2.0, 6_000)])
def test_above_capacity_goodput_plateaus_at_the_formula(sb: RunningSandbox, factor: float, first: int) -> None:
    started = time.time()
    run = open_loop_subprocess(sb.base_url, factor * FORMULA, DURATION, first=first, count=20_000)
    goodput = run.goodput(WARMUP, END)
    assert goodput == pytest.approx(FORMULA, rel=0.05), f"goodput {goodput:.1f} vs formula {FORMULA:.1f}"
    # the excess is refused: 503 share ~ 1 - 1/factor once the backlog is full
    assert run.share(503, WARMUP) == pytest.approx(1 - 1 / factor, abs=0.08)
    # latency: full backlog (16 per task) ahead of each served request -> ~ (16/80 + 0.05) s
    assert run.latency_pct(0.5, WARMUP) > 0.15
    wait_for_second(time.time())
    backlog = query(
        sb.base_url,
        "max:puma.backlog{ecs_service:clinician-workflow-app}",
        int(started) + 2,
        int(started + DURATION) - 1,
    )["series"][0]
    assert max(values(backlog)) >= 12
    cap = query(sb.base_url, "min:puma.pool_capacity{*}", int(started) + 2, int(started + DURATION) - 1)
    # the gauge is each second's average of free threads: under overload essentially none is ever free
    assert max(values(cap["series"][0])) < 0.05


def test_default_lognormal_service_plateaus_too() -> None:
    cfg = SandboxConfig(
        app_tasks=2, threads=4, backlog=16, service_ms=50, service_dist="lognormal", records=5000, sidekiq_tasks=0
    )
    with run_sandbox(cfg) as sb:
        run = open_loop_subprocess(sb.base_url, 1.3 * FORMULA, 8.0, first=0, count=5000)
    assert run.goodput(WARMUP, 7.5) == pytest.approx(FORMULA, rel=0.05)
