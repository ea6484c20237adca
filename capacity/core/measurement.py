"""What one load stage asked for and what it measured: plain data shared by load, judge and search.

Kept out of ``capacity.load`` so that a judge (or a notebook) can read a stage's measurement without
importing Locust, whose import monkey-patches the standard library with gevent.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from hdrh.histogram import HdrHistogram

from capacity.core.models import EndpointStats, FlowStats, SecondSample

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
    shape: tuple[tuple[float, float], ...] = ()
    """A rate shape as (seconds, multiple of ``target_rps``) points; empty for a flat rate."""
    guard_window_s: int = 0
    """Seconds of the sliding guard window that may stop the stage: a stop whose window reaches into the
    warm-up makes the stage's figures cover the warm-up too (the failing seconds must be in them)."""


@dataclass
class StageMeasurement:
    spec: StageSpec
    started_at: datetime
    measure_from: datetime
    ended_at: datetime
    seconds: list[SecondSample]
    histogram: HdrHistogram
    """The statistics window's arrivals, microseconds from the intended start; unfinished requests
    enter with the time they had waited when the stage stopped (right-censored)."""
    requests: int
    """Sent in the statistics window: ``ok + errors + unfinished``."""
    ok: int
    errors: int
    dropped: int
    status_codes: dict[str, int]
    endpoints: dict[str, EndpointStats]
    """Per endpoint (or locustfile task) name, over the same window as the stage's figures."""
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
    unfinished: int = 0
    """Sent in the window and still in flight when the stage stopped (killed after a short drain)."""
    auth_retries: int = 0
    """Requests re-sent once with a fresh token after a 401/403 (not errors; ``load.auth``)."""
    aborted_in_warmup: bool = False
    """Stopped in its warm-up (or by a guard window reaching into it): the window starts at the stage's start."""
    window_s: float | None = None
    """Length of the statistics window: from ``measure_from`` to the end of the stage or the moment
    arrivals stopped. Offered, goodput and latency all cover this one window."""
    window_ok: int | None = None
    """Successful responses completed within the window (goodput's numerator, by completion time)."""
    flows: dict[str, FlowStats] = field(default_factory=dict)
    """Per session flow: the sessions started in the window and what they became."""

    @property
    def measured_s(self) -> float:
        """Length of the statistics window (shorter when the stage was stopped).

        Ends when arrivals stopped, not after in-flight requests drained: dividing by the drain too
        would understate the offered rate of every aborted stage.
        """
        if self.window_s is not None:
            return self.window_s
        stop = self.load_ended_at.timestamp() if self.load_ended_at is not None else self.ended_at.timestamp()
        end = min(stop, self.started_at.timestamp() + self.spec.duration_s)
        return max(0.0, end - self.measure_from.timestamp())

    @property
    def offered_rps(self) -> float:
        w = self.measured_s
        return self.requests / w if w > 0 else 0.0

    @property
    def achieved_rps(self) -> float:
        """Goodput over the window: completions within it when known, else the window's successful arrivals."""
        w = self.measured_s
        ok = self.window_ok if self.window_ok is not None else self.ok
        return ok / w if w > 0 else 0.0

    @property
    def percentiles_censored(self) -> bool:
        """Some latencies are waits cut short by the stop: percentiles are then lower bounds."""
        return self.unfinished > 0

    def percentile_ms(self, q: float) -> float | None:
        """Latency percentile in ms; ``q`` in percent (95, 99.9), or a fraction when below 1."""
        return pct_ms(self.histogram, q * 100.0 if 0 < q < 1 else q)
