"""The sandbox's soak faults: a leak per request (existing) and a job queue that drains slower over time."""

from __future__ import annotations

import pytest

from capacity.sandbox.config import SandboxConfig, SandboxConfigError
from capacity.sandbox.tasks import WorkerTask


def test_jobs_slow_by_the_set_rate_per_hour() -> None:
    cfg = SandboxConfig(job_ms=100.0, job_slowdown_per_hour=2.0)
    worker = WorkerTask(cfg, 0, writer=None)  # type: ignore[arg-type]  # no job is sent here
    assert worker.mean_job_ms() == pytest.approx(100.0, rel=1e-3)
    worker.started -= 1800.0  # half an hour later: 1 + 2 x 0.5
    assert worker.mean_job_ms() == pytest.approx(200.0, rel=1e-3)
    assert WorkerTask(SandboxConfig(job_ms=100.0), 0, writer=None).mean_job_ms() == 100.0  # type: ignore[arg-type]


def test_slowing_drain_is_a_python_stack_fault() -> None:
    with pytest.raises(SandboxConfigError, match="job_slowdown_per_hour"):
        SandboxConfig(stack="puma", job_slowdown_per_hour=1.0)
