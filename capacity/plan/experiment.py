"""The experiment file: one validated, typed model that every stage of the pipeline reads.

Experiment files are TOML (see ``experiments/``). Unknown keys and wrong types are errors that
name the file and the dotted key, because a typo in a guard silently disabling it is the worst
failure a capacity test can have.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_core import PydanticCustomError

from capacity.core.errors import ExperimentError
from capacity.core.urls import is_http_url
from capacity.plan.base import HttpMethod, NonNegFloat, PositiveFloat
from capacity.plan.base import Strict as _Strict
from capacity.plan.production import FlowVolume, Production, Scenario, check_scenarios
from capacity.plan.sandbox_settings import SandboxSettings
from capacity.plan.soak import SoakSettings
from capacity.plan.target import SANDBOX_URL, Auth, Target
from capacity.plan.workload import Endpoint, Flow, FlowStep, TestData, Workload

__all__ = [
    "SANDBOX_URL",
    "Arrival",
    "Auth",
    "Cluster",
    "Endpoint",
    "Experiment",
    "Flow",
    "FlowStep",
    "FlowVolume",
    "Guards",
    "HttpMethod",
    "MetricQueries",
    "MetricsSettings",
    "MetricsSource",
    "NonNegFloat",
    "PositiveFloat",
    "Production",
    "Scenario",
    "StagePlanSettings",
    "Strategy",
    "Target",
    "TestData",
    "Workload",
    "load_experiment",
    "parse_experiment",
]


Strategy = Literal["adaptive", "linear", "geometric"]
"""How the rate moves between stages (``[stages] strategy``, ``--strategy``)."""
Arrival = Literal["uniform", "poisson"]
"""How arrivals are spaced inside a stage (``[stages] arrival``, ``--arrival``)."""
MetricsSource = Literal["none", "datadog"]
"""Where server-side metrics come from (``[metrics] source``, ``--metrics``)."""


class StagePlanSettings(_Strict):
    """How the offered rate moves between stages."""

    strategy: Strategy = "adaptive"
    start_rps: PositiveFloat = 10.0
    max_rps: PositiveFloat = 500.0
    step_rps: PositiveFloat | None = None
    growth: float = Field(1.5, gt=1.0, le=10.0)
    stage_seconds: float = Field(20.0, gt=0, le=86_400)
    warmup_seconds: NonNegFloat = 5.0
    resolution: float = Field(0.05, gt=0, lt=1)
    max_stages: int = Field(30, ge=1, le=1000)
    max_duration_s: PositiveFloat = 3600.0
    confirm: bool = False
    arrival: Arrival = "uniform"
    max_inflight: int = Field(0, ge=0)
    """Cap on requests in flight; 0 sizes it from the rate and the SLO (Little's law with slack)."""
    recovery_timeout_s: NonNegFloat = 60.0
    recovery_latency_factor: float = Field(2.0, gt=1.0)
    seed: int = 7

    @model_validator(mode="after")
    def _order(self) -> StagePlanSettings:
        if self.start_rps > self.max_rps:
            raise ValueError(f"start_rps ({self.start_rps:g}) is above max_rps ({self.max_rps:g})")
        if self.warmup_seconds >= self.stage_seconds:
            raise ValueError(
                f"warmup_seconds ({self.warmup_seconds:g}) must be shorter than stage_seconds ({self.stage_seconds:g})"
            )
        return self


class EndpointGuards(_Strict):
    """``[guards.endpoints.NAME]``: latency limits for one endpoint, judged over the whole stage."""

    slo_p95_ms: PositiveFloat | None = None
    slo_p99_ms: PositiveFloat | None = None


class FlowGuards(_Strict):
    """``[guards.flows.NAME]``: limits for one session flow, judged over the whole stage."""

    max_session_p95_s: PositiveFloat | None = None
    """Completed sessions' duration p95 (first call's intended start to last answer), think time included."""
    max_failed_ratio: float | None = Field(None, ge=0, le=1)
    """Failed sessions over ended ones (completed + failed; unfinished at the stage's end are not counted)."""


class Guards(_Strict):
    """Limits judged over a sliding window during a stage and over the whole stage."""

    window_seconds: int = Field(3, ge=1, le=600)
    max_error_ratio: float = Field(0.01, ge=0, le=1)
    slo_p95_ms: PositiveFloat | None = 500.0
    slo_p99_ms: PositiveFloat | None = None
    min_goodput_ratio: float = Field(0.95, gt=0, le=1)
    max_dropped_ratio: float = Field(0.01, ge=0, le=1)
    max_generator_cpu_pct: float = Field(85.0, gt=0, le=100)
    max_auth_failure_ratio: float = Field(0.01, ge=0, le=1)
    """Requests still refused (401/403) after one retry with a fresh token, as a share of the stage's: above
    it the stage is ``invalid: auth`` (the token, not the target) and the run stops; never a knee."""
    max_cpu_pct: PositiveFloat | None = 85.0
    max_mem_pct: PositiveFloat | None = 90.0
    max_queue_latency_s: PositiveFloat | None = 30.0
    max_queue_growth_per_s: PositiveFloat | None = 1.0
    """Job-queue growth (jobs/s, least-squares slope over the stage) above which the queue is judged growing."""
    max_backlog: NonNegFloat | None = None
    min_pool_capacity: NonNegFloat | None = None
    endpoints: dict[str, EndpointGuards] = Field(default_factory=dict)
    """Per-endpoint SLOs by endpoint name (``[guards.endpoints.NAME] slo_p95_ms = ...``)."""
    flows: dict[str, FlowGuards] = Field(default_factory=dict)
    """Per session flow (``[guards.flows.NAME] max_session_p95_s = ...``, ``max_failed_ratio``)."""


class MetricQueries(_Strict):
    """Datadog query templates, one per metric name used in stage tables and guards.

    ``$app_scope``/``$sidekiq_scope`` (the ECS service's tasks), ``$app_container_scope``/
    ``$sidekiq_container_scope`` (that service's main container only), ``$queue_scope`` and
    ``$apm_scope`` (``service:``/``env:``) expand to tag filters built from ``[metrics]``; ``None``
    skips a metric. Fargate's ``ecs.fargate.cpu.percent`` is per container with 100 = one vCPU: the
    task's figure is the sum over its containers, divided by the task's vCPUs (``[cluster]``), which
    is how ECS service autoscaling counts (docs/design.md, section 5).
    """

    cpu_pct: str | None = "sum:ecs.fargate.cpu.percent{$app_scope} by {task_arn}"
    """Task CPU: every container of the task summed (ECS's own count); divided by the task's vCPUs."""
    cpu_container_pct: str | None = "avg:ecs.fargate.cpu.percent{$app_container_scope} by {task_arn}"
    """The app container alone, as the agent reports it (100 = one vCPU), shown beside ``cpu_pct``."""
    mem_usage: str | None = "avg:ecs.fargate.mem.usage{$app_container_scope} by {task_arn}"
    """Includes page cache (the agent's metadata): the memory figure is usage minus ``mem_cache``."""
    mem_cache: str | None = "avg:ecs.fargate.mem.cache{$app_container_scope} by {task_arn}"
    """Page cache, reclaimable: ECS's own MemoryUtilization leaves it out, so does ``mem_pct``."""
    mem_limit: str | None = "avg:ecs.fargate.mem.limit{$app_container_scope} by {task_arn}"
    """Absent for a container without a hard limit: the task's ``[cluster] mem_mib_per_task`` then."""
    pool_capacity: str | None = "avg:puma.pool_capacity{$app_scope} by {task_arn}"
    max_threads: str | None = "avg:puma.max_threads{$app_scope} by {task_arn}"
    backlog: str | None = "max:puma.backlog{$app_scope} by {task_arn}"
    queue_size: str | None = "max:sidekiq.enqueued{$queue_scope}"
    """Sidekiq Enterprise's documented total of all queues (DogStatsD); per-queue sizes are custom
    metrics (``presets.SIDEKIQ_PER_QUEUE_SIZE``); ``sidekiq = "oss"`` reads ``redis.key.length``."""
    queue_latency_s: str | None = "max:sidekiq.queue.latency{$queue_scope} by {queue}"
    """A custom metric (Sidekiq's integration documents no queue latency): teams publish
    ``Sidekiq::Queue#latency`` themselves; without it the latency guard is blind."""
    jobs_processed: str | None = "sum:sidekiq.jobs.count{$queue_scope} by {queue}.as_count()"
    sidekiq_cpu_pct: str | None = "sum:ecs.fargate.cpu.percent{$sidekiq_scope} by {task_arn}"
    mem_pct: str | None = None
    """Memory as a percentage (CloudWatch's memory_utilization); Fargate derives it from usage/limit."""
    running_tasks: str | None = None
    apm_hits: str | None = None
    """APM (ddtrace) request metrics are opt-in and carry ``service``/``env`` (not task tags), e.g.
    ``sum:trace.rack.request.hits{$apm_scope}.as_count()``."""
    apm_errors: str | None = None
    """Datadog stores no points for zero errors, so a quiet window reads as incomplete: use as a guard input only."""
    apm_latency_s: str | None = None
    extra: dict[str, str] = Field(default_factory=dict)


class MetricsSettings(_Strict):
    source: MetricsSource = "datadog"
    preset: Literal["fargate", "cloudwatch"] = "fargate"
    """Query set: Datadog agent metrics on Fargate, or CloudWatch ``aws.ecs.service.*`` (10-20 min late)."""
    site: str = "datadoghq.com"
    url: str | None = None
    """Base URL override (tests, the sandbox). ``CAPACITY_DATADOG_URL`` overrides this."""
    cluster: str = ""
    app_service: str = ""
    sidekiq_service: str = ""
    cluster_tag: str = "ecs_cluster_name"
    service_tag: str = "ecs_service"
    extra_scope: str = ""
    queue_scope: str = ""
    """Tag filter for Sidekiq queue metrics; empty uses the Sidekiq service's scope."""
    late_prefixes: list[str] = Field(default_factory=lambda: ["aws."])
    """Metrics with these prefixes arrive late (CloudWatch): never waited for, filled by the catch-up pass."""
    rollup_seconds: int = Field(10, ge=1)
    intervals: dict[str, Annotated[int, Field(ge=1)]] = Field(default_factory=dict)
    """Emission interval (s) per query name or metric-name prefix (``"puma." = 15``; ``"*"`` for every
    metric), over the built-in defaults; each query is rolled up at ``max(rollup_seconds, interval)``."""
    app_container: str = Field("app", min_length=1)
    """The app task's main (Puma) container: ``ecs_container_name`` of its memory and CPU."""
    sidekiq_container: str = Field("sidekiq", min_length=1)
    sidekiq: Literal["enterprise", "oss"] = "enterprise"
    queue_keys: list[str] = Field(default_factory=list)
    """``sidekiq = "oss"``: the Redis keys the agent's Redis check lists (``queue:default``...). Set,
    a key with no point reads as 0 jobs (Redis deletes an empty list); unset, absent means unknown."""
    """``oss``: open-source Sidekiq publishes no ``sidekiq.*`` metrics; queue length comes from the
    Redis check (``redis.key.length``, key ``queue:<name>``) and jobs processed are not read."""
    apm_service: str = ""
    """APM's ``service`` tag (trace metrics carry ``service``/``env``, not task tags)."""
    apm_env: str = ""
    dashboard_url: str | None = None
    """The team's Datadog dashboard; the report links it over the run's and each stage's window."""
    poll_deadline_s: NonNegFloat = 90.0
    poll_interval_s: PositiveFloat = 5.0
    catch_up: bool = True
    events: bool = False
    queries: MetricQueries = Field(default_factory=MetricQueries)

    @field_validator("dashboard_url")
    @classmethod
    def _dashboard(cls, v: str | None) -> str | None:
        if v is not None and not is_http_url(v):
            raise ValueError(f"must be an http(s) URL, got {v!r}")
        return v


class Cluster(_Strict):
    """The staging cluster under test: what one measured unit of capacity is made of."""

    app_tasks: int = Field(2, ge=1)
    puma_threads: int | None = Field(None, ge=1)
    sidekiq_tasks: int = Field(1, ge=0)
    sidekiq_concurrency: int = Field(5, ge=1)
    cpu_units_per_task: int = Field(1024, ge=128)
    """App task size in ECS CPU units (1024 = one vCPU): task CPU % is container % / (units / 1024)."""
    sidekiq_cpu_units_per_task: int | None = Field(None, ge=128)
    """Sidekiq task size; unset means the same as ``cpu_units_per_task``."""
    mem_mib_per_task: int = Field(2048, ge=128)
    ecs_cluster: str = ""
    """The staging ECS cluster whose app service ``capacity scale`` sizes (with ``ecs_service``)."""
    ecs_service: str = ""
    """The app's ECS service: set, ``capacity scale`` sets its desired count through the AWS API."""
    region: str = ""
    """AWS region of the cluster; empty: boto3's usual lookup (``AWS_REGION``, profile)."""

    @property
    def app_vcpus(self) -> float:
        return self.cpu_units_per_task / 1024.0

    @property
    def sidekiq_vcpus(self) -> float:
        return (self.sidekiq_cpu_units_per_task or self.cpu_units_per_task) / 1024.0


class Experiment(_Strict):
    """A capacity experiment: target, workload, stage plan, guards, metrics, cluster and production."""

    name: str = Field(min_length=1)
    description: str = ""
    target: Target
    sandbox: SandboxSettings = Field(default_factory=SandboxSettings)  # type: ignore[arg-type]
    workload: Workload
    stages: StagePlanSettings = Field(default_factory=StagePlanSettings)  # type: ignore[arg-type]
    guards: Guards = Field(default_factory=Guards)  # type: ignore[arg-type]
    metrics: MetricsSettings = Field(default_factory=MetricsSettings)  # type: ignore[arg-type]
    cluster: Cluster = Field(default_factory=Cluster)  # type: ignore[arg-type]
    production: Production = Field(default_factory=Production)  # type: ignore[arg-type]
    soak: SoakSettings = Field(default_factory=SoakSettings)  # type: ignore[arg-type]
    source_file: str | None = Field(None, exclude=True)

    @model_validator(mode="after")
    def _endpoint_guards_known(self) -> Experiment:
        names = [e.name for e in self.workload.endpoints]
        for name in self.guards.endpoints:
            if names and name not in names:
                raise PydanticCustomError(
                    "unknown_endpoint",
                    "no endpoint named '{name}' in the workload (endpoints: {known})",
                    {"field": f"guards.endpoints.{name}", "name": name, "known": ", ".join(names)},
                )
        sessions = [f.name for f in self.workload.sessions]
        for name in self.guards.flows:
            if name not in sessions:
                raise PydanticCustomError(
                    "unknown_flow",
                    "no flow named '{name}' runs as sessions (session flows: {known})",
                    {"field": f"guards.flows.{name}", "name": name, "known": ", ".join(sessions) or "none"},
                )
        return self

    @model_validator(mode="after")
    def _scenarios_known(self) -> Experiment:
        try:
            check_scenarios(self.production, self.workload)
        except ValueError as exc:  # names the key like a field error: production.scenarios
            raise PydanticCustomError("scenario", str(exc), {"field": "production.scenarios"}) from None
        return self

    def with_changes(self, *, label: str | None = None, **sections: dict[str, Any]) -> Experiment:
        """A copy with some keys of some sections replaced, validated again (CLI flags use this).

        ``label`` names where the changes came from in error messages (e.g. "command-line flags").
        """
        data = self.model_dump(mode="python")
        for section, values in sections.items():
            if isinstance(data.get(section), dict):
                data[section] = {**data[section], **values}
            else:
                data[section] = values
        changed = parse_experiment(data, source=label or self.source_file)
        return changed.model_copy(update={"source_file": self.source_file})


def _loc(err: dict[str, Any]) -> str:
    parts = [str(p) for p in err.get("loc", ()) if not str(p).startswith("function-after")]
    field = (err.get("ctx") or {}).get("field")  # a cross-field check names its field (sandbox_settings)
    return ".".join([*parts, field] if field else parts)


def _describe(err: dict[str, Any]) -> str:
    kind = err.get("type", "")
    if kind == "extra_forbidden":
        return "unknown key"
    if kind == "missing":
        return "missing required key"
    msg = str(err.get("msg", "invalid")).removeprefix("Value error, ")
    if "input" in err and kind not in ("model_type", "dict_type") and not isinstance(err["input"], dict):
        return f"{msg} (got {err['input']!r})"
    return msg


def parse_experiment(data: dict[str, Any], *, source: str | None = None) -> Experiment:
    """Validate a parsed TOML document; raise ``ExperimentError`` naming the first bad key."""
    try:
        exp = Experiment.model_validate({**data, "source_file": source})
    except ValidationError as exc:
        first = exc.errors()[0]
        raise ExperimentError(_describe(dict(first)), file=source, key=_loc(dict(first)) or None) from None
    return exp


def load_experiment(path: str | os.PathLike[str]) -> Experiment:
    """Read and validate an experiment file. ``CAPACITY_TARGET`` overrides ``target.base_url``."""
    p = Path(path)
    if not p.is_file():
        raise ExperimentError("no such experiment file", file=str(p))
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ExperimentError(f"not valid TOML: {exc}", file=str(p)) from None
    except UnicodeDecodeError:
        raise ExperimentError("not UTF-8 text", file=str(p)) from None
    env_target = os.environ.get("CAPACITY_TARGET")
    if env_target and isinstance(data.get("target"), dict):
        data["target"] = {**data["target"], "base_url": env_target}
    return parse_experiment(data, source=str(p))


def default_experiment_path() -> Path:
    """What ``search`` and ``nightly`` run with no file: ``experiments/sandbox.toml`` here, else the built-in one."""
    local = Path("experiments") / "sandbox.toml"
    return local if local.is_file() else builtin_experiment_path()


def builtin_experiment_path() -> Path:
    """The default experiment (the sandbox), shipped inside the package so it works when installed."""
    return Path(__file__).resolve().parent.parent / "data" / "sandbox.toml"
