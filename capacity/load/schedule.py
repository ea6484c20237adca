"""Arrival schedules and endpoint mixes, computed in vectorised chunks before they are needed.

The hot path only walks plain Python lists: the time of each arrival (seconds from stage start)
and which request kind it is. Chunks keep memory flat on long stages while keeping per-request work
to a list step. A worker ``i`` of ``n`` gets rate/n with a phase of i/n of its own interarrival,
so the union of all workers' uniform schedules is exactly the single-process schedule.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from typing import Literal

import numpy as np

CHUNK = 4096
Arrival = Literal["uniform", "poisson"]


def suggest_max_inflight(rate: float, slo_ms: float | None, timeout_s: float, p99_ms: float | None = None) -> int:
    """In-flight cap from Little's law with slack: rate x max(SLO, observed p99) x 2, in [16, 5000].

    Too small a cap drops arrivals a healthy target would have served; too large lets a stalled
    target pile up thousands of sockets. The SLO (or the observed p99 when worse) is the latency
    the stage is expected to hold; the request timeout only bounds it when no SLO is known.
    """
    lat_s = max((slo_ms or 0.0) / 1000.0, (p99_ms or 0.0) / 1000.0)
    if lat_s <= 0:
        lat_s = min(timeout_s, 1.0)
    return int(min(5000, max(16, math.ceil(rate * lat_s * 2))))


def arrival_chunks(
    rate: float,
    duration_s: float,
    *,
    arrival: Arrival = "uniform",
    phase: float = 0.0,
    seed: int = 0,
    chunk: int = CHUNK,
) -> Iterator[list[float]]:
    """Offsets (s from stage start, < duration_s) of this process's arrivals, in chunks.

    ``phase`` is the fraction of one interarrival (1/rate) by which the uniform schedule is shifted;
    Poisson schedules draw exponential gaps from ``seed`` (independent streams add up to Poisson).
    """
    if rate <= 0 or duration_s <= 0:
        return
    if arrival == "uniform":
        gap = 1.0 / rate
        total = math.ceil(duration_s * rate - phase) if duration_s * rate > phase else 0
        for lo in range(0, total, chunk):
            idx = np.arange(lo, min(lo + chunk, total), dtype=np.float64)
            out = ((idx + phase) * gap).tolist()
            if out and out[-1] >= duration_s:
                out = [t for t in out if t < duration_s]
            if out:
                yield out
        return
    rng = np.random.default_rng(seed)
    t = float(rng.exponential(1.0 / rate)) * phase if phase else 0.0
    while True:
        times = t + np.cumsum(rng.exponential(1.0 / rate, size=chunk))
        t = float(times[-1])
        if t >= duration_s:
            cut = times[times < duration_s]
            if cut.size:
                yield cut.tolist()
            return
        yield times.tolist()


def mix_chunks(weights: Sequence[float], *, seed: int = 0, chunk: int = CHUNK, block: int = 128) -> Iterator[list[int]]:
    """Endless request-kind indices whose counts follow ``weights`` exactly, in shuffled order.

    Counts per block of ``block`` arrivals come from cumulative rounding (the running count of each
    kind never strays more than one from its share at block ends), and only the order inside a
    block is shuffled, so weights hold within a fraction of a percent even on short stages while
    kinds still interleave without a fixed pattern.
    """
    w = np.asarray(weights, dtype=np.float64)
    if w.size == 0 or np.any(w < 0) or w.sum() <= 0:
        raise ValueError("weights must be non-negative with a positive sum")
    if w.size == 1:
        one = [0] * chunk
        while True:
            yield one
    cum = np.cumsum(w / w.sum())
    rng = np.random.default_rng(seed)
    done = 0
    while True:
        out: list[int] = []
        for _ in range(max(1, chunk // block)):
            hi = np.floor(cum * (done + block) + 1e-9).astype(np.int64)
            lo = np.floor(cum * done + 1e-9).astype(np.int64)
            counts = np.diff(np.concatenate(([0], hi))) - np.diff(np.concatenate(([0], lo)))
            counts[-1] = block - counts[:-1].sum()
            kinds = np.repeat(np.arange(w.size), counts)
            rng.shuffle(kinds)
            done += block
            out.extend(kinds.tolist())
        yield out
