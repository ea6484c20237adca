"""What one load stage asked for and what it measured: plain data shared by load, judge and search.

Kept out of ``capacity.load`` so that a judge (or a notebook) can read a stage's measurement without
importing Locust, whose import monkey-patches the standard library with gevent.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from hdrh.histogram import HdrHistogram

from capacity.models import SecondSample

Arrival = Literal["uniform", "poisson"]


def pct_ms(h: HdrHistogram, q: float) -> float | None:
    """Percentile ``q`` (in percent) of a microsecond histogram, in ms; None when it is empty."""
    if h.get_total_count() == 0:
        return None
    return h.get_value_at_percentile(q) / 1000.0


@dataclass(frozen=True)
class StageSpec:
    index: int
    target_rps: float
    duration_s: float
    """Whole stage, warm-up included."""
    warmup_s: float
    arrival: Arrival = "uniform"
    max_inflight: int = 256
    """Cap on requests in flight over all generator processes."""
    seed: int = 0


@dataclass
class StageMeasurement:
    spec: StageSpec
    started_at: datetime
    measure_from: datetime
    ended_at: datetime
    seconds: list[SecondSample]
    histogram: HdrHistogram
    """Measured part only, microseconds, from the intended start."""
    requests: int
    ok: int
    errors: int
    dropped: int
    status_codes: dict[str, int]
    per_endpoint: dict[str, dict[str, float]]
    aborted: str | None
    interrupted: bool
    worker_lost: bool
    generator_cpu_max_pct: float | None
    max_inflight_seen: int
    records_exhausted: int
    workers: int = 0
    per_worker: dict[str, dict[str, float]] = field(default_factory=dict)
    """Worker id -> requests and offered_rps over the measured window (distributed runs)."""
    warnings: list[str] = field(default_factory=list)
    load_ended_at: datetime | None = None
    """When arrivals stopped (the stage's end, or its abort), before in-flight requests drained."""

    @property
    def measured_s(self) -> float:
        """Length of the measured window actually offered (shorter when the stage was stopped).

        Ends when arrivals stopped, not after in-flight requests drained: dividing by the drain too
        would understate the offered rate of every aborted stage.
        """
        stop = self.load_ended_at.timestamp() if self.load_ended_at is not None else self.ended_at.timestamp()
        end = min(stop, self.started_at.timestamp() + self.spec.duration_s)
        return max(0.0, end - self.measure_from.timestamp())

    @property
    def offered_rps(self) -> float:
        w = self.measured_s
        return self.requests / w if w > 0 else 0.0

    @property
    def achieved_rps(self) -> float:
        w = self.measured_s
        return self.ok / w if w > 0 else 0.0

    def percentile_ms(self, q: float) -> float | None:
        """Latency percentile in ms; ``q`` in percent (95, 99.9), or a fraction when below 1."""
        return pct_ms(self.histogram, q * 100.0 if 0 < q < 1 else q)
