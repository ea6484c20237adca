"""Service times: a simulated downstream (VistA) wait plus a little real CPU, with a stated mean.

The slot time ``cpu_ms + wait`` has mean ``mean_ms`` whatever the distribution, so the capacity
formula holds for const, exp and lognormal alike.
"""

from __future__ import annotations

import math
import random
import time

LOGNORMAL_SIGMA = 0.5
"""Shape of the lognormal wait; its mu is chosen so the mean is exact."""


def draw_wait_ms(rng: random.Random, dist: str, mean_ms: float) -> float:
    """One simulated downstream wait (ms) with mean ``mean_ms`` (>= 0)."""
    if mean_ms <= 0:
        return 0.0
    if dist == "const":
        return mean_ms
    if dist == "exp":
        return rng.expovariate(1.0 / mean_ms)
    if dist == "lognormal":
        mu = math.log(mean_ms) - LOGNORMAL_SIGMA**2 / 2
        return rng.lognormvariate(mu, LOGNORMAL_SIGMA)
    raise ValueError(f"unknown service distribution {dist!r}")


def draw_slot_ms(rng: random.Random, dist: str, mean_ms: float, cpu_ms: float) -> tuple[float, float]:
    """(wait_ms, cpu_ms) for one request: together they average ``mean_ms``."""
    return draw_wait_ms(rng, dist, max(mean_ms - cpu_ms, 0.0)), cpu_ms


def burn_cpu(ms: float) -> None:
    """Real CPU work for ``ms`` of wall time (a busy loop, like request parsing/rendering would be)."""
    if ms <= 0:
        return
    end = time.perf_counter() + ms / 1000.0
    x = 0
    while time.perf_counter() < end:
        x += 1
