"""The built-in sandbox's settings: one model for the experiment file's ``[sandbox]`` and the CLI flags.

Each field is defined once, with one set of bounds, so ``capacity sandbox --app-tasks 20`` and
``[sandbox] app_tasks = 20`` are accepted or refused alike. The model lives below both ``plan`` (the
experiment file) and ``sandbox`` (which adds its runtime fields in ``capacity.sandbox.config``).

The seed: ``[sandbox]`` has none. The sandbox's synthetic records (and its service-time draws) come
from ``[workload.test_data] seed``, the same seed the workload draws its path values from, so every
appointment the workload addresses exists in the sandbox. ``capacity sandbox --seed`` sets it when the
sandbox runs on its own.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError

ServiceDist = Literal["const", "exp", "lognormal"]
SERVICE_DISTS: tuple[str, ...] = ("const", "exp", "lognormal")
MAX_TASKS = 64
"""App or Sidekiq tasks: each is a process on this machine."""
MAX_THREADS = 1024
"""Request slots per app task, or jobs per Sidekiq task."""


def field_error(field: str, message: str, **context: Any) -> PydanticCustomError:
    """A cross-field check's error that still names its field (as ``ctx["field"]``) for the CLI's flag."""
    return PydanticCustomError("sandbox_field", message, {"field": field, **context})


class SandboxSettings(BaseModel):
    """Parameters of the built-in sandbox (``target.base_url = "sandbox://"``, or ``capacity sandbox``).

    ``service_ms`` is the mean slot time (simulated VistA wait + ``cpu_ms`` of real CPU) of every
    workload endpoint; ``job_ms`` the mean Sidekiq job time, built the same way. Unknown keys are
    refused. No seed here: see the module docstring.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)

    app_tasks: int = Field(2, ge=1, le=MAX_TASKS)
    threads: int = Field(4, ge=1, le=MAX_THREADS)
    backlog: int = Field(64, ge=0)
    service_ms: float = Field(50.0, gt=0)
    service_dist: ServiceDist = "lognormal"
    cpu_ms: float = Field(0.5, ge=0)
    sidekiq_tasks: int = Field(1, ge=0, le=MAX_TASKS)
    sidekiq_concurrency: int = Field(5, ge=1, le=MAX_THREADS)
    job_ms: float = Field(100.0, gt=0)
    error_rate: float = Field(0.0, ge=0, le=1)
    error_above_rps: float | None = Field(None, gt=0)
    """Fault option: while more than this many workload requests arrived over the last second, the
    front answers every workload request 500 at once (no app task, no service time); ``None``: off."""
    mem_growth_kb: float = Field(0.0, ge=0)
    """Fault option (a leak a soak catches): memory each served request leaves behind in its app task, KiB."""
    mem_limit_mb: float = Field(512.0, gt=0)
    job_slowdown_per_hour: float = Field(0.0, ge=0)
    """Fault option (a queue that drains slower over time): each job takes ``job_ms x (1 + this x hours
    since the Sidekiq task started)``; once the jobs' rate outruns the slowing drain, the queue grows."""
    stack: Literal["python", "puma", "rails"] = "python"
    """``puma``: real Redis, Puma and Sidekiq from Debian's packages (``capacity.sandbox.stack``);
    ``rails``: a Rails API on PostgreSQL behind those (``capacity.sandbox.stack.rails``)."""
    db_pool: int | None = Field(None, ge=1, le=MAX_THREADS)
    """``rails``: ActiveRecord pool per app task; unset means one connection per Puma thread."""
    db_max_connections: int = Field(100, ge=10, le=10_000)
    """``rails``: PostgreSQL's ``max_connections`` (every app and Sidekiq task shares the one server)."""
    hot_rows: int = Field(0, ge=0, le=1_000_000)
    """``rails``: every check-in also updates one of this many shared rows (a clinic's daily counter), so
    check-ins queue for each other's row locks in the one database; 0: off."""
    agent_interval_s: float = Field(1.0, gt=0, le=60)
    """How often the real stack's agent-like collector publishes (the Datadog agent's checks: 15 s)."""
    tag_cardinality: Literal["low", "orchestrator"] = "orchestrator"
    """The agent's ``DD_CHECKS_TAG_CARDINALITY``: at ``low`` (the agent's default) Puma and Redis check
    metrics carry no ``task_arn``, so every task's series collapse into one group (the search warns)."""
    contention_sigma: float = Field(0.0, ge=0, lt=1)
    """Scaling bottleneck (USL sigma): each added app task adds this share of a request's time spent
    queueing for a resource every task shares (one Postgres pool); see ``capacity.sandbox.contention``."""
    crosstalk_kappa: float = Field(0.0, ge=0, le=1)
    """Scaling bottleneck (USL kappa): coherency cost per pair of app tasks (cache/lock traffic between them)."""

    def min_mean_ms(self) -> float:
        """The smallest mean slot time of any endpoint (real CPU work must fit inside it)."""
        return self.service_ms

    @property
    def pool_per_task(self) -> int:
        """``rails``: the ActiveRecord pool of one app task (``db_pool``, else its threads)."""
        return self.db_pool or self.threads

    @model_validator(mode="before")
    @classmethod
    def _no_seed_here(cls, data: Any) -> Any:
        if isinstance(data, dict) and "seed" in data and "seed" not in cls.model_fields:
            raise field_error("seed", "the sandbox takes its seed from [workload.test_data] seed; remove it here")
        return data

    @model_validator(mode="after")
    def _cpu_fits(self) -> SandboxSettings:
        if self.cpu_ms > self.min_mean_ms():
            raise field_error(
                "cpu_ms",
                "cpu_ms must be at most the smallest mean service time ({limit} ms), got {value}",
                limit=self.min_mean_ms(),
                value=self.cpu_ms,
            )
        if self.stack != "python" and (self.contention_sigma or self.crosstalk_kappa):
            raise field_error("contention_sigma", "the scaling bottleneck needs stack = 'python'")
        if self.stack != "python" and self.job_slowdown_per_hour:
            raise field_error("job_slowdown_per_hour", "the slowing queue drain needs stack = 'python'")
        if self.stack != "rails" and (self.db_pool is not None or self.hot_rows):
            raise field_error(
                "db_pool" if self.db_pool is not None else "hot_rows", "this setting needs stack = 'rails'"
            )
        if self.job_ms < self.cpu_ms:
            raise field_error(
                "job_ms", "job_ms must be >= cpu_ms ({cpu_ms}), got {value}", cpu_ms=self.cpu_ms, value=self.job_ms
            )
        return self
