"""The result contracts shared by every part: per-second samples, stage results, the run summary.

These are the stable shapes that the results folder, ``search --json``, the report, the nightly
gate and notebooks rely on (docs/design.md section 4). Add fields; never rename or remove one.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from capacity.core.breach import Breach
from capacity.core.outcomes import Verdict

Phase = Literal["warmup", "measure"]


class SecondSample(BaseModel):
    """One second of one stage as the load generator saw it (aggregated over all workers)."""

    model_config = ConfigDict(extra="forbid")

    stage: int
    t: float
    """Start of the second, Unix epoch seconds (UTC)."""
    phase: Phase
    target_rps: float
    offered: int
    """Requests started in this second."""
    ok: int
    """Successful responses completed in this second (goodput)."""
    errors: int
    dropped: int
    """Scheduled arrivals that found no free in-flight slot and were not sent."""
    inflight: int
    p50_ms: float | None = None
    p95_ms: float | None = None
    p99_ms: float | None = None
    max_ms: float | None = None
    generator_cpu_pct: float | None = None
    """Highest CPU % of any load-generator process in this second."""
    workers: int = 1


class EndpointStats(BaseModel):
    """One endpoint's share of a stage, over the same window as the stage's own figures."""

    model_config = ConfigDict(extra="forbid")

    requests: int = 0
    ok: int = 0
    errors: int = 0
    """Completed with an error (HTTP >= 400 or a transport error); ``unfinished`` are not among them."""
    unfinished: int = 0
    """Still in flight when the stage stopped: in the error ratio, and in the percentiles as censored waits."""
    p50_ms: float | None = None
    p95_ms: float | None = None
    p99_ms: float | None = None


class FlowStats(BaseModel):
    """One session flow's share of a stage: sessions started in the stage's window and what they became."""

    model_config = ConfigDict(extra="forbid")

    started: int = 0
    completed: int = 0
    failed: int = 0
    failed_at_step: dict[str, int] = Field(default_factory=dict)
    """Failed sessions by the step (1-based, as written in the flow) whose call failed or was dropped."""
    unfinished: int = 0
    """Still running when the stage ended (a call in flight, or due after the end): neither completed nor failed."""
    dropped: int = 0
    """Sessions whose first call found no free slot: never started."""
    p50_s: float | None = None
    p95_s: float | None = None
    """Completed sessions' duration, from the intended start of the first call to the last answer."""
    planned_per_s: float = 0.0
    started_per_s: float = 0.0
    """Sessions started per second over the window, against ``planned_per_s``."""

    @property
    def failed_ratio(self) -> float:
        ended = self.completed + self.failed
        return self.failed / ended if ended else 0.0


class StageResult(BaseModel):
    """One stage, judged. ``metrics`` holds per-stage aggregates of server-side metrics."""

    model_config = ConfigDict(extra="forbid")

    index: int
    target_rps: float
    offered_rps: float
    achieved_rps: float
    dropped: int
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    error_ratio: float
    verdict: Verdict
    reasons: list[str] = Field(default_factory=list)
    metrics: dict[str, float | None] = Field(default_factory=dict)
    # fields beyond the minimum of docs/design.md section 4
    probe: str = "ramp"
    """Why this rate was chosen: ramp, bisect, confirm, linear."""
    started_at: datetime | None = None
    measure_from: datetime | None = None
    ended_at: datetime | None = None
    duration_s: float = 0.0
    requests: int = 0
    ok: int = 0
    errors: int = 0
    mean_ms: float | None = None
    max_ms: float | None = None
    generator_cpu_pct: float | None = None
    max_inflight: int = 0
    metrics_completeness: dict[str, float] = Field(default_factory=dict)
    status_codes: dict[str, int] = Field(default_factory=dict)
    aborted_early: bool = False
    breaches: list[Breach] = Field(default_factory=list)
    """The broken rules behind ``verdict`` as records (``reasons`` holds their text, for people)."""
    blind: list[str] = Field(default_factory=list)
    """Queries feeding a set guard that returned no data in the stage: those guards judged nothing."""
    unfinished: int = 0
    """Requests still in flight when the stage stopped (killed): counted in ``error_ratio``'s denominator
    and numerator, and in the percentiles with the time they had already waited (right-censored)."""
    aborted_in_warmup: bool = False
    """The stage was stopped before its warm-up ended, or by a window reaching into it: its figures then
    cover every arrival from the stage's start to the abort, warm-up included."""
    percentiles_censored: bool = False
    """Some latencies are waits cut short by the abort: the percentiles (and ``max_ms``) are lower bounds."""
    endpoints: dict[str, EndpointStats] = Field(default_factory=dict)
    """Per endpoint (or locustfile task) name, over the stage's window."""
    worst_endpoint: str = ""
    """The endpoint with the highest p95 in the stage ("" with fewer than two endpoints)."""
    flows: dict[str, FlowStats] = Field(default_factory=dict)
    """Per session flow (``mode = "session"``), over the stage's window by session start."""
    rejudged: bool = False
    """Judged again after the catch-up pass brought metrics its blind guards lacked (``judge.rejudge``)."""
    auth_retries: int = 0
    """Requests answered 401/403 right after a token expiry and sent again once with the fresh token:
    counted here, not as errors (``load.auth``)."""


class Estimate(BaseModel):
    """A capacity figure with its interval and the signal that set it."""

    model_config = ConfigDict(extra="forbid")

    value: float | None
    lo: float | None = None
    hi: float | None = None
    signal: str = ""
    method: str = ""
    reached: bool = True
    """False when the data never showed the limit: ``value`` is then a lower bound."""
    extrapolated: bool = False
    note: str = ""


def _no_interval() -> list[float | None]:
    return [None, None]


BottleneckResource = Literal["puma_threads", "db_pool", "database", "cpu", "sidekiq", "generator", "unknown"]


class Bottleneck(BaseModel):
    """The resource that limited a failing stage and the metrics that say so (``capacity.analyze.bottleneck``)."""

    model_config = ConfigDict(extra="forbid")

    resource: BottleneckResource
    evidence: str
    stage: int
    also: list[str] = Field(default_factory=list)
    """Other resources near their limit in the same stage (symptoms further out, or a second limit)."""


class RunSummary(BaseModel):
    """The run summary JSON (stable keys; docs/design.md section 4)."""

    model_config = ConfigDict(extra="forbid")

    run_id: str
    results_dir: str
    experiment: str
    target: str
    saturation_rps: float | None = None
    slo_capacity_rps: float | None = None
    knee_rps: float | None = None
    capacity_interval: list[float | None] = Field(default_factory=lambda: _no_interval())
    stopped_reason: str = ""
    """A code (``capacity.core.outcomes.StopReason``, or ``guard:<code>``): compared, never parsed."""
    stop_detail: str = ""
    """Prose beside the code: for a ``resolution`` stop, the guard and rate that bounded it from above."""
    stages: list[StageResult] = Field(default_factory=list)
    recommendation: dict[str, Any] | None = None
    # beyond the minimum
    started_at: datetime | None = None
    ended_at: datetime | None = None
    estimates: dict[str, Estimate] = Field(default_factory=dict)
    search_path: list[dict[str, Any]] = Field(default_factory=list)
    truth: dict[str, Any] | None = None
    """For sandbox runs: the capacity the sandbox's parameters imply."""
    warnings: list[str] = Field(default_factory=list)
    bottleneck: Bottleneck | None = None
    """What limited the first failing stage (None when every stage passed)."""
    bottlenecks: list[Bottleneck] = Field(default_factory=list)
    """The same for each failing stage, in stage order."""

    @property
    def stopped_text(self) -> str:
        """The stop for people to read: the code, and its detail in brackets when there is one."""
        return f"{self.stopped_reason} ({self.stop_detail})" if self.stop_detail else self.stopped_reason

    def to_dict(self) -> dict[str, Any]:
        """The summary as ``summary.json`` holds it (plain JSON values: ISO dates, no models)."""
        return self.model_dump(mode="json")
