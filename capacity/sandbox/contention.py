"""The sandbox's scaling bottleneck: a resource every app task shares, so tasks do not add capacity linearly.

Clinician Workflow's app tasks share one Postgres, one Redis and the VistA round trip. The sandbox
models that as a slowdown of every request's slot time that grows with the number of live app tasks N::

    slot_ms(N) = mean_ms x (1 + sigma x (N - 1) + kappa x N x (N - 1))

``sigma`` (``contention_sigma``) is contention: the share of work serialised on the shared pool, one
more waiter per added task. ``kappa`` (``crosstalk_kappa``) is crosstalk: a coherency cost per pair of
tasks (lock and cache traffic between them). One task holds ``threads`` slots, so its pool capacity is
``lambda = threads / mean_service_s`` and N tasks carry

    X(N) = N x threads / (mean_service_s x slowdown(N)) = lambda x N / (1 + sigma (N - 1) + kappa N (N - 1))

which is Gunther's Universal Scalability Law with exactly these parameters (``capacity.analyze.usl``).
With sigma = kappa = 0 the slowdown is 1 and capacity is linear in N, as before.
"""

from __future__ import annotations

import math


def slowdown(n_tasks: int, sigma: float, kappa: float) -> float:
    """How much longer each request holds its slot with ``n_tasks`` live app tasks (1 for one task)."""
    n = max(int(n_tasks), 1)
    return 1.0 + sigma * (n - 1) + kappa * n * (n - 1)


def usl_rps(n_tasks: int, lam: float, sigma: float, kappa: float) -> float:
    """Capacity of ``n_tasks`` app tasks whose single-task capacity is ``lam`` (the USL's X(N))."""
    if n_tasks <= 0:
        return 0.0
    return lam * n_tasks / slowdown(n_tasks, sigma, kappa)


def peak_tasks(sigma: float, kappa: float) -> float | None:
    """Where X(N) peaks, ``sqrt((1 - sigma) / kappa)``; None when kappa is 0 (no retrograde region)."""
    return math.sqrt((1.0 - sigma) / kappa) if kappa > 0 and sigma < 1 else None


FORMULA = "X(N) = lambda*N / (1 + sigma*(N-1) + kappa*N*(N-1)), lambda = threads / mean_service_s"
MECHANISM = (
    "every request's slot time is multiplied by 1 + sigma*(N-1) + kappa*N*(N-1), N = live app tasks "
    "(a shared pool whose service time grows with the task count)"
)
