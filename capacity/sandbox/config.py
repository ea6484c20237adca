"""The sandbox's parameters: one frozen value shared by the CLI, the search and every sandbox process.

``SandboxConfig`` is the shared ``SandboxSettings`` (``capacity.plan.sandbox_settings``: the fields, bounds
and seed rule the experiment file's ``[sandbox]`` uses too) plus what only a running sandbox needs:
seed and record count, keys, per-endpoint service times and the names its metrics carry. Invalid
values raise ``SandboxConfigError``, one line naming the field and its CLI flag, so the CLI and the
Python API report bad input the same way (exit 2).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import Field, ValidationError, field_validator
from pydantic_core import ErrorDetails

from capacity.core.errors import CapacityError
from capacity.plan.sandbox_settings import SERVICE_DISTS, SandboxSettings, ServiceDist, field_error

if TYPE_CHECKING:
    from capacity.plan.experiment import Experiment

__all__ = ["ENDPOINTS", "ENDPOINT_NAMES", "SERVICE_DISTS", "SandboxConfig", "SandboxConfigError", "ServiceDist"]


@dataclass(frozen=True, slots=True)
class EndpointSpec:
    """One workload route of the stand-in and its share of the default mix (the seed's 1x profile)."""

    name: str
    method: str
    rpm: float
    enqueues: float = 0.0
    """Background jobs one successful request enqueues."""


ENDPOINTS: tuple[EndpointSpec, ...] = (
    # The seed gives 7839 req/min for /patient_demographics_status without a method split; CHIP reads
    # the status and then sets it, so the sandbox's default mix splits it evenly between GET and POST.
    EndpointSpec("get_demographics_status", "GET", 7839 / 2),
    EndpointSpec("set_demographics_status", "POST", 7839 / 2),
    EndpointSpec("appointment_summary", "POST", 588, enqueues=1.0),
    EndpointSpec("appointment_checkin", "POST", 588),
)
ENDPOINT_NAMES: tuple[str, ...] = tuple(e.name for e in ENDPOINTS)


class SandboxConfigError(CapacityError):
    """A sandbox parameter is out of range."""


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _one_line(exc: ValidationError) -> str:
    """The first error as ``sandbox NAME (--flag): what is wrong, got VALUE``."""
    err: ErrorDetails = exc.errors()[0]
    ctx = err.get("ctx") or {}
    name = str(ctx.get("field") or (err["loc"][0] if err["loc"] else ""))
    where = f"sandbox {name} ({_flag(name)})" if name else "sandbox"
    got = "" if err["type"] == "sandbox_field" else f", got {err.get('input')!r}"
    return f"{where}: {err['msg'].removeprefix('Value error, ')}{got}"


class SandboxConfig(SandboxSettings):
    """``SandboxSettings`` plus the runtime fields (see module docstring); names mirror the CLI flags.

    ``endpoint_ms`` overrides ``service_ms`` per endpoint (the CLI allows that only when
    ``--service-ms`` is not given).
    """

    seed: int = 42
    """Synthetic records and service-time draws; a search sets it from ``[workload.test_data] seed``."""
    records: int = Field(5000, ge=1, le=2_000_000)
    require_keys: tuple[str, str] | None = None
    endpoint_ms: tuple[tuple[str, float], ...] = ()
    cluster: str = "sandbox"
    app_service: str = "clinician-workflow-app"
    sidekiq_service: str = "clinician-workflow-sidekiq"
    follow_ecs: str | None = None
    """``CLUSTER/SERVICE``: follow that ECS service's desired count (``capacity.sandbox.ecs_follow``)."""
    ecs_poll_s: float = Field(0.5, gt=0)
    replacement_delay_s: float = Field(5.0, ge=0, le=3600)
    """A stopped app task's replacement starts this long after the stop (``capacity.sandbox.task_loss``)."""

    def __init__(self, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as exc:
            raise SandboxConfigError(_one_line(exc)) from None

    @field_validator("endpoint_ms")
    @classmethod
    def _known_endpoints(cls, value: tuple[tuple[str, float], ...]) -> tuple[tuple[str, float], ...]:
        for name, ms in value:
            if name not in ENDPOINT_NAMES:
                raise ValueError(f"unknown endpoint {name!r}; known: {', '.join(ENDPOINT_NAMES)}")
            if not ms > 0:
                raise ValueError(f"the mean for {name} must be > 0 ms, got {ms!r}")
        return value

    @field_validator("follow_ecs")
    @classmethod
    def _cluster_slash_service(cls, value: str | None) -> str | None:
        if value is not None and (value.count("/") != 1 or not all(value.split("/"))):
            raise field_error("follow_ecs", "follow_ecs must be CLUSTER/SERVICE, got '{value}'", value=value)
        return value

    @field_validator("require_keys")
    @classmethod
    def _two_keys(cls, value: tuple[str, str] | None) -> tuple[str, str] | None:
        if value is not None and not all(value):
            raise field_error("require_keys", "require_keys must be two non-empty strings (api key, app key)")
        return value

    # ------------------------------------------------------------------------------ derived
    def mean_ms(self, endpoint: str) -> float:
        """Mean slot time of one endpoint (its override, else ``service_ms``)."""
        return dict(self.endpoint_ms).get(endpoint, self.service_ms)

    def min_mean_ms(self) -> float:
        return min([self.service_ms, *(ms for _, ms in self.endpoint_ms)])

    @property
    def mem_limit_bytes(self) -> int:
        return int(self.mem_limit_mb * 1024 * 1024)

    # --------------------------------------------------------------------------- conversion
    @classmethod
    def from_settings(cls, settings: SandboxSettings, **runtime: Any) -> SandboxConfig:
        """An experiment's ``[sandbox]`` settings plus runtime fields (``seed``, ``records``...)."""
        return cls(**settings.model_dump(), **runtime)

    def to_json(self, *, with_keys: bool = True) -> str:
        if with_keys:
            return self.model_dump_json()
        return self.model_copy(update={"require_keys": None}).model_dump_json()

    @classmethod
    def from_json(cls, text: str) -> SandboxConfig:
        try:
            return cls.model_validate_json(text)
        except ValidationError as exc:
            raise SandboxConfigError(_one_line(exc)) from None


def sandbox_config_for(exp: Experiment) -> SandboxConfig:
    """The sandbox an experiment with ``target.base_url = "sandbox://"`` runs against.

    Its ``[sandbox]`` settings, seeded by ``[workload.test_data] seed`` (the one seed: see
    ``capacity.plan.sandbox_settings``); with ``source = "sandbox"`` test data it also serves the same
    number of records, so every appointment the workload addresses exists.
    """
    td = exp.workload.test_data
    records = {"records": td.records} if td.source == "sandbox" else {}
    return SandboxConfig.from_settings(exp.sandbox, seed=td.seed, **records)
