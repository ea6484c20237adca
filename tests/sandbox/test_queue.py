"""The Sidekiq-like queue: enqueueing faster than the drain rate grows size and latency; slower does not.

1 worker task x 2 concurrency / 100 ms = 20 jobs/s drain.
"""

from __future__ import annotations

import time

import pytest

from capacity.sandbox import SandboxConfig, run_sandbox, truth
from tests.sandbox.conftest import query, values, wait_for_second
from tests.sandbox.openloop import open_loop_subprocess

pytestmark = pytest.mark.slow

CFG = SandboxConfig(
    app_tasks=1,
    threads=16,
    backlog=64,
    service_ms=5,
    service_dist="const",
    cpu_ms=0.2,
    sidekiq_tasks=1,
    sidekiq_concurrency=2,
    job_ms=100,
    records=50,
)
SUMMARY = "/appointments/1000000/summary"


def test_queue_grows_only_above_the_drain_rate() -> None:
    drain = truth(CFG).queue_jobs_per_s
    assert drain == pytest.approx(20.0)
    with run_sandbox(CFG) as sb:
        slow_start = time.time()
        slow = open_loop_subprocess(sb.base_url, 0.5 * drain, 4.0, path=SUMMARY)
        slow_end = time.time()
        fast = open_loop_subprocess(sb.base_url, 2.0 * drain, 4.0, path=SUMMARY)
        fast_end = time.time()
        wait_for_second(fast_end)
        url = sb.base_url
        size_slow = values(
            query(url, "max:sidekiq.queue.size{queue:default}", int(slow_start) + 1, int(slow_end) - 1)["series"][0]
        )
        lat_slow = values(
            query(url, "max:sidekiq.queue.latency{queue:default}", int(slow_start) + 1, int(slow_end) - 1)["series"][0]
        )
        size_fast = values(
            query(url, "max:sidekiq.queue.size{queue:default}", int(slow_end) + 1, int(fast_end) - 1)["series"][0]
        )
        lat_fast = values(
            query(url, "max:sidekiq.queue.latency{queue:default}", int(slow_end) + 1, int(fast_end) - 1)["series"][0]
        )
        done = query(
            url, "sum:sidekiq.jobs.count{queue:default}.rollup(sum, 3600)", int(slow_end) + 1, int(fast_end) - 1
        )["series"][0]
    assert slow.share(202) == 1.0 and fast.share(202) == 1.0
    assert max(size_slow) <= 3 and max(lat_slow) < 0.3
    # ~ (40 - 20) jobs/s accumulate: about 60-80 waiting after 3-4 s, and the oldest waits seconds
    assert size_fast[-1] >= 40 and size_fast == sorted(size_fast)
    assert lat_fast[-1] >= 1.0 and lat_fast[-1] > lat_fast[0]
    seconds = len(size_fast)
    assert sum(values(done)) == pytest.approx(drain * seconds, rel=0.25)
