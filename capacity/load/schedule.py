"""Arrival schedules and endpoint mixes, computed in vectorised chunks before they are needed.

The hot path only walks plain Python lists: the time of each arrival (seconds from stage start)
and which request kind it is. Chunks keep memory flat on long stages while keeping per-request work
to a list step. A worker ``i`` of ``n`` gets rate/n with a phase of i/n of its own interarrival,
so the union of all workers' uniform schedules is exactly the single-process schedule.

A stage may follow a rate *shape* (bursts, or a list of points) instead of a flat rate: the arrivals
are then those of the flat schedule at unit rate, mapped through the inverse of the shape's
cumulative rate (a time change), so a uniform schedule stays exact inside the shape, Poisson stays
Poisson, and worker ``i`` of ``n`` still holds its exact share. The shape is ``StageSpec.shape``:
(seconds, multiple of the stage's rate) points, so a worker given rate/n scales it the same way.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

CHUNK = 4096
Arrival = Literal["uniform", "poisson"]
Shape = tuple[tuple[float, float], ...]
"""(seconds, multiple of the stage's rate) points; empty for a flat rate."""


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
    shape: Shape = (),
    chunk: int = CHUNK,
) -> Iterator[list[float]]:
    """Offsets (s from stage start, < duration_s) of this process's arrivals, in chunks.

    ``phase`` is the fraction of one interarrival (1/rate) by which the uniform schedule is shifted;
    Poisson schedules draw exponential gaps from ``seed`` (independent streams add up to Poisson).
    A ``shape`` (``shape_of``) scales ``rate`` by the shape's multiplier over time.
    """
    if rate <= 0 or duration_s <= 0:
        return
    if shape:
        shaped = RateShape.of(shape)
        yield from _shaped_chunks(shaped, rate, duration_s, kind=arrival, phase=phase, seed=seed, chunk=chunk)
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


@dataclass(frozen=True)
class RateShape:
    """A rate over a stage: piecewise linear through ``(seconds, rate)`` points; a repeated time is a step.

    Before the first point and after the last the rate holds its end value.
    """

    times: tuple[float, ...]
    rates: tuple[float, ...]

    def __post_init__(self) -> None:
        if len(self.times) != len(self.rates) or not self.times:
            raise ValueError("a rate shape needs at least one (seconds, rate) point")
        if any(b < a for a, b in zip(self.times, self.times[1:], strict=False)) or self.times[0] < 0:
            raise ValueError("a rate shape's times must be >= 0 and in order")
        if any(r < 0 or not math.isfinite(r) for r in self.rates):
            raise ValueError("a rate shape's rates must be finite and >= 0")

    @classmethod
    def of(cls, points: Sequence[tuple[float, float]]) -> RateShape:
        return cls(tuple(float(t) for t, _ in points), tuple(float(r) for _, r in points))

    def _pieces(self, duration_s: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Pieces of positive length over ``[0, duration_s]``: start time, length, start rate, end rate."""
        t = np.array([0.0, *self.times, max(duration_s, self.times[-1])])
        r = np.array([self.rates[0], *self.rates, self.rates[-1]])
        length = np.diff(t)
        keep = length > 0
        return t[:-1][keep], length[keep], r[:-1][keep], r[1:][keep]

    def total(self, duration_s: float) -> float:
        """The integral of the rate over ``[0, duration_s]`` (expected arrivals at multiplier 1)."""
        return float(self.cumulative(np.array([duration_s]))[0])

    def cumulative(self, t: np.ndarray) -> np.ndarray:
        """The integral of the rate from 0 to each ``t``."""
        start, length, r0, r1 = self._pieces(float(np.max(t, initial=0.0)))
        area = length * (r0 + r1) / 2
        cum = np.concatenate(([0.0], np.cumsum(area)))
        j = np.clip(np.searchsorted(start, t, side="right") - 1, 0, len(start) - 1)
        dt = np.clip(t - start[j], 0.0, length[j])
        slope = (r1[j] - r0[j]) / length[j]
        return np.asarray(cum[j] + r0[j] * dt + slope * dt * dt / 2)

    def inverse(self, y: np.ndarray, duration_s: float) -> np.ndarray:
        """The times at which the cumulative rate reaches each ``y`` (inf past the stage's end)."""
        start, length, r0, r1 = self._pieces(duration_s)
        area = length * (r0 + r1) / 2
        cum = np.concatenate(([0.0], np.cumsum(area)))
        j = np.clip(np.searchsorted(cum[:-1], y, side="right") - 1, 0, len(start) - 1)
        dy = y - cum[j]
        slope = (r1[j] - r0[j]) / length[j]
        root = np.sqrt(np.maximum(r0[j] * r0[j] + 2 * slope * dy, 0.0))
        denom = r0[j] + root
        with np.errstate(divide="ignore", invalid="ignore"):
            tau = np.where(denom > 0, 2 * dy / denom, np.inf)
        out = start[j] + tau
        return np.where(y > cum[-1], np.inf, out)


def shape_of(points: Sequence[tuple[float, float]], duration_s: float) -> tuple[float, Shape]:
    """A stage following ``points`` (absolute req/s): its mean rate (the stage's target) and its shape.

    The shape is stored as multiples of the mean, so a worker given rate/n keeps its exact share.
    """
    shape = RateShape.of(points)
    mean = shape.total(duration_s) / duration_s
    if mean <= 0:
        raise ValueError("a shaped stage needs a positive mean rate")
    return mean, tuple((float(t), float(r / mean)) for t, r in zip(shape.times, shape.rates, strict=True))


def _shaped_chunks(
    shape: RateShape, rate: float, duration_s: float, *, kind: Arrival, phase: float, seed: int, chunk: int
) -> Iterator[list[float]]:
    """Arrivals of the flat unit-rate schedule, mapped through the inverse cumulative rate x ``rate``."""
    total = shape.total(duration_s) * rate
    if kind == "uniform":
        count = math.ceil(total - phase) if total > phase else 0
        for lo in range(0, count, chunk):
            y = (np.arange(lo, min(lo + chunk, count), dtype=np.float64) + phase) / rate
            t = np.round(shape.inverse(y, duration_s), 9)  # 6.9999999999 is 7: counts per second stay exact
            out = t[t < duration_s].tolist()
            if out:
                yield out
        return
    rng = np.random.default_rng(seed)
    y0 = float(rng.exponential(1.0)) * phase if phase else 0.0
    while True:
        ys = y0 + np.cumsum(rng.exponential(1.0, size=chunk))
        y0 = float(ys[-1])
        t = shape.inverse(ys / rate, duration_s)
        out = t[t < duration_s]
        if out.size:
            yield out.tolist()
        if y0 >= total:
            return


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
