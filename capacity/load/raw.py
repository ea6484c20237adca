"""Raw counts of one generator process, before they are merged across workers and judged.

A stage's arrivals fall in two parts, the warm-up and the measured part (by intended start). Each
part keeps its own per-kind counts and histograms, so the stage's figures can cover the measured part
(a stage that ran, or was stopped after its warm-up) or every arrival from the start (a stage stopped
in its warm-up) without the engine deciding which: the decision is made once, where stages from one
process and from many are assembled alike (``capacity.load.stage_totals``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hdrh.histogram import HdrHistogram

HIGHEST_US = 3_600_000_000
"""Largest latency a histogram tracks (1 h, in microseconds); larger values are clamped."""

UNFINISHED = "aborted"
"""Status-code key of requests still in flight when the stage stopped (killed, never answered)."""


def new_histogram(digits: int = 3) -> HdrHistogram:
    return HdrHistogram(1, HIGHEST_US, digits)


@dataclass
class SecondRaw:
    """One second of one generator process, before merging across workers."""

    k: int
    offered: int = 0
    ok: int = 0
    errors: int = 0
    dropped: int = 0
    inflight: int = 0
    cpu_pct: float | None = None
    hist: HdrHistogram = field(default_factory=lambda: new_histogram(2))


@dataclass
class FlowRaw:
    """What the sessions of one flow started in one part of a stage became (one process, before merging).

    ``failed_at`` counts failed sessions by the step (0-based) that failed them; ``unfinished`` were still
    running when the stage ended (a step in flight, or due after the end); ``dropped`` found no free slot
    for their first request and never started. ``hist`` holds completed sessions' durations (us)."""

    name: str
    steps: int
    started: int = 0
    completed: int = 0
    failed: int = 0
    unfinished: int = 0
    dropped: int = 0
    failed_at: list[int] = field(default_factory=list)
    hist: HdrHistogram = field(default_factory=lambda: new_histogram(3))

    def __post_init__(self) -> None:
        if not self.failed_at:
            self.failed_at = [0] * self.steps

    def add(self, other: FlowRaw) -> None:
        self.started += other.started
        self.completed += other.completed
        self.failed += other.failed
        self.unfinished += other.unfinished
        self.dropped += other.dropped
        for i, n in enumerate(other.failed_at[: self.steps]):
            self.failed_at[i] += n
        if other.hist.get_total_count():
            self.hist.add(other.hist)

    def copy_empty(self) -> FlowRaw:
        return FlowRaw(self.name, self.steps)


@dataclass
class PartRaw:
    """What the arrivals of one part of a stage became, per request kind (index into ``StageRaw.names``).

    ``unfinished`` requests were in flight when the stage stopped; their histograms hold the time they
    had waited by then (a right-censored latency). ``status_codes`` counts every sent request once
    (the unfinished under ``"aborted"``).
    """

    requests: list[int]
    errors: list[int]
    unfinished: list[int]
    hists: list[HdrHistogram]
    status_codes: dict[str, int] = field(default_factory=dict)
    dropped: int = 0
    flows: list[FlowRaw] = field(default_factory=list)
    """Per session flow (empty when no flow runs as sessions)."""

    @classmethod
    def empty(cls, kinds: int) -> PartRaw:
        return cls([0] * kinds, [0] * kinds, [0] * kinds, [new_histogram(3) for _ in range(kinds)])

    @property
    def total_requests(self) -> int:
        return sum(self.requests)

    @property
    def total_unfinished(self) -> int:
        return sum(self.unfinished)

    @property
    def total_errors(self) -> int:
        return sum(self.errors)

    @property
    def total_ok(self) -> int:
        return self.total_requests - self.total_errors - self.total_unfinished

    def add(self, other: PartRaw) -> None:
        """Add ``other`` (same kinds) into this part."""
        for i in range(min(len(self.requests), len(other.requests))):
            self.requests[i] += other.requests[i]
            self.errors[i] += other.errors[i]
            self.unfinished[i] += other.unfinished[i]
            if other.hists[i].get_total_count():
                self.hists[i].add(other.hists[i])
        for c, n in other.status_codes.items():
            self.status_codes[c] = self.status_codes.get(c, 0) + n
        self.dropped += other.dropped
        if not self.flows:
            self.flows = [f.copy_empty() for f in other.flows]
        for mine, theirs in zip(self.flows, other.flows, strict=False):
            mine.add(theirs)


@dataclass
class StageRaw:
    """One process's stage: its closed seconds, and its arrivals' outcomes by part."""

    ended_wall: float
    seconds: list[SecondRaw]
    names: list[str]
    warmup: PartRaw
    measured: PartRaw
    records_exhausted: int
    stopped: str | None
    load_stopped_wall: float = 0.0
    """When arrivals stopped (before in-flight requests drained)."""
    stop_offset_s: float | None = None
    """Seconds from the stage's start to the moment arrivals stopped; None when the stage ran to its end."""
    ok_by_second: list[int] = field(default_factory=list)
    """Successful completions per completion second, counted up to the moment arrivals stopped."""
    flow_rates: list[float] = field(default_factory=list)
    """Planned sessions/s of each session flow in this process (they add up across workers)."""

    def part(self, *, include_warmup: bool) -> PartRaw:
        """The measured part, or (``include_warmup``) every arrival of the stage, as one new part."""
        out = PartRaw.empty(len(self.names))
        if include_warmup:
            out.add(self.warmup)
        out.add(self.measured)
        return out

    # the measured part's totals, under the names a caller of one process's stage reads
    @property
    def requests(self) -> int:
        return self.measured.total_requests

    @property
    def ok(self) -> int:
        return self.measured.total_ok

    @property
    def errors(self) -> int:
        return self.measured.total_errors

    @property
    def unfinished(self) -> int:
        return self.measured.total_unfinished

    @property
    def dropped(self) -> int:
        return self.measured.dropped

    @property
    def status_codes(self) -> dict[str, int]:
        return self.measured.status_codes

    @property
    def kind_requests(self) -> list[int]:
        return self.measured.requests

    @property
    def kind_hists(self) -> list[HdrHistogram]:
        return self.measured.hists
