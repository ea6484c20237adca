"""The capacity the sandbox's parameters imply: the numbers tests and reports compare against.

Thread-pool bound (Little's law at full occupancy), with the scaling bottleneck's slowdown
(``capacity.sandbox.contention``; 1 when ``contention_sigma = crosstalk_kappa = 0``)::

    pool_rps = app_tasks * threads / (mean_service_s * (1 + sigma*(N-1) + kappa*N*(N-1))),  N = app_tasks

where ``mean_service_s`` is the mix-weighted mean slot time over the default endpoint mix.
Sidekiq drain rate and the request rate at which the job queue starts to grow::

    queue_jobs_per_s = sidekiq_tasks * sidekiq_concurrency / job_s
    queue_bound_rps  = queue_jobs_per_s / (jobs enqueued per request over the mix)

Goodput saturates at ``pool_rps``; above ``queue_bound_rps`` the queue grows without bound (the
requests still succeed), so a search sees queue latency before errors when ``queue_bound_rps`` is lower.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from capacity.sandbox import contention
from capacity.sandbox.config import ENDPOINTS, SandboxConfig


@dataclass(frozen=True)
class SandboxTruth:
    pool_rps: float
    queue_jobs_per_s: float
    queue_bound_rps: float
    mean_service_ms: float
    mix: dict[str, float]
    """Share of requests per endpoint (sums to 1)."""
    jobs_per_request: float
    config: SandboxConfig

    @property
    def saturation_rps(self) -> float:
        """Goodput ceiling: the thread pools (the queue only delays jobs, it never refuses requests)."""
        return self.pool_rps

    @property
    def bottleneck(self) -> str:
        """Which limit a rising load meets first: ``pool`` or ``queue``."""
        return "queue" if self.queue_bound_rps < self.pool_rps else "pool"

    @property
    def lambda_rps(self) -> float:
        """One app task's pool capacity alone (the USL's lambda): threads / mean_service_s."""
        return self.config.threads / (self.mean_service_ms / 1000.0)

    def rps_at(self, app_tasks: int) -> float:
        """The thread pools' capacity with ``app_tasks`` live app tasks (the USL curve)."""
        c = self.config
        return contention.usl_rps(app_tasks, self.lambda_rps, c.contention_sigma, c.crosstalk_kappa)

    def by_app_tasks(self) -> dict[str, float]:
        """Capacity at 1 .. max(8, 2 x app_tasks) app tasks (``--explain --json``'s ``by_app_tasks``)."""
        top = min(max(8, 2 * self.config.app_tasks), 64)
        return {str(n): round(self.rps_at(n), 4) for n in range(1, top + 1)}

    def usl(self) -> dict[str, Any]:
        """The true USL parameters, the curve's peak and how the sandbox produces it."""
        c = self.config
        return {
            "sigma": c.contention_sigma,
            "kappa": c.crosstalk_kappa,
            "lambda": self.lambda_rps,
            "peak_tasks": contention.peak_tasks(c.contention_sigma, c.crosstalk_kappa),
            "formula": contention.FORMULA,
            "mechanism": contention.MECHANISM,
        }

    def as_dict(self) -> dict[str, Any]:
        c = self.config
        slow = contention.slowdown(c.app_tasks, c.contention_sigma, c.crosstalk_kappa)
        return {
            "pool_rps": self.pool_rps,
            "saturation_rps": self.saturation_rps,
            "queue_jobs_per_s": self.queue_jobs_per_s,
            "queue_bound_rps": self.queue_bound_rps if math.isfinite(self.queue_bound_rps) else None,
            "mean_service_ms": self.mean_service_ms,
            "jobs_per_request": self.jobs_per_request,
            "bottleneck": self.bottleneck,
            "mix": dict(self.mix),
            "formula": {
                "pool_rps": f"app_tasks * threads / mean_service_s = {c.app_tasks} * {c.threads} / "
                f"{self.mean_service_ms / 1000:.4g}"
                + (f" / slowdown {slow:.4g} (1 + sigma*(N-1) + kappa*N*(N-1))" if slow != 1.0 else ""),
                "queue_jobs_per_s": f"sidekiq_tasks * sidekiq_concurrency / job_s = {c.sidekiq_tasks} * "
                f"{c.sidekiq_concurrency} / {c.job_ms / 1000:.4g}",
                "queue_bound_rps": f"queue_jobs_per_s / jobs_per_request = {self.queue_jobs_per_s:.4g} / "
                f"{self.jobs_per_request:.4g}",
            },
            "parameters": {
                "app_tasks": c.app_tasks,
                "threads": c.threads,
                "backlog": c.backlog,
                "service_ms": c.service_ms,
                "endpoint_ms": {e.name: c.mean_ms(e.name) for e in ENDPOINTS},
                "service_dist": c.service_dist,
                "cpu_ms": c.cpu_ms,
                "sidekiq_tasks": c.sidekiq_tasks,
                "sidekiq_concurrency": c.sidekiq_concurrency,
                "job_ms": c.job_ms,
                "contention_sigma": c.contention_sigma,
                "crosstalk_kappa": c.crosstalk_kappa,
            },
            "by_app_tasks": self.by_app_tasks(),
            "usl": self.usl(),
        }


def default_mix() -> dict[str, float]:
    """Share of each endpoint in the seed's 1x profile."""
    total = sum(e.rpm for e in ENDPOINTS)
    return {e.name: e.rpm / total for e in ENDPOINTS}


def truth(config: SandboxConfig, mix: Mapping[str, float] | None = None) -> SandboxTruth:
    """Capacity figures for ``config`` over ``mix`` (default: the seed's profile); weights need not sum to 1."""
    weights = dict(mix) if mix is not None else default_mix()
    total = sum(weights.values())
    if total <= 0:
        raise ValueError("endpoint mix has no weight")
    shares = {name: w / total for name, w in weights.items()}
    mean_ms = sum(share * config.mean_ms(name) for name, share in shares.items())
    enqueues = {e.name: e.enqueues for e in ENDPOINTS}
    jobs_per_request = sum(share * enqueues.get(name, 0.0) for name, share in shares.items())
    slow = contention.slowdown(config.app_tasks, config.contention_sigma, config.crosstalk_kappa)
    pool_rps = config.app_tasks * config.threads / (mean_ms / 1000.0 * slow)
    drain = config.sidekiq_tasks * config.sidekiq_concurrency / (config.job_ms / 1000.0)
    queue_bound = drain / jobs_per_request if jobs_per_request > 0 else float("inf")
    return SandboxTruth(
        pool_rps=pool_rps,
        queue_jobs_per_s=drain,
        queue_bound_rps=queue_bound,
        mean_service_ms=mean_ms,
        mix=shares,
        jobs_per_request=jobs_per_request,
        config=config,
    )
