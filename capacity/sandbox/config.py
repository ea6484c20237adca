"""The sandbox's parameters: one frozen value shared by the CLI, the search runner and every process.

Invalid values raise ``SandboxConfigError`` naming the field and its CLI flag, so the CLI and the
Python API report bad input the same way (one line, exit 2).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from capacity.errors import CapacityError

if TYPE_CHECKING:
    from capacity.plan.experiment import SandboxSettings

ServiceDist = Literal["const", "exp", "lognormal"]
SERVICE_DISTS: tuple[str, ...] = ("const", "exp", "lognormal")


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


@dataclass(frozen=True)
class SandboxConfig:
    """Parameters of the stand-in; field names mirror the ``capacity sandbox`` flags.

    ``service_ms`` is the mean slot time (simulated VistA wait + ``cpu_ms`` of real CPU) of every
    workload endpoint; ``endpoint_ms`` overrides it per endpoint (the CLI allows that only when
    ``--service-ms`` is not given). ``job_ms`` is the mean Sidekiq job time, built the same way.
    """

    app_tasks: int = 2
    threads: int = 4
    backlog: int = 64
    service_ms: float = 50.0
    service_dist: ServiceDist = "lognormal"
    cpu_ms: float = 0.5
    sidekiq_tasks: int = 1
    sidekiq_concurrency: int = 5
    job_ms: float = 100.0
    error_rate: float = 0.0
    error_above_rps: float | None = None
    """Fault option: while more than this many workload requests arrived over the last second, the
    front answers every workload request 500 at once (no app task, no service time); ``None``: off."""
    mem_growth_kb: float = 0.0
    mem_limit_mb: float = 512.0
    seed: int = 42
    records: int = 5000
    require_keys: tuple[str, str] | None = None
    endpoint_ms: tuple[tuple[str, float], ...] = ()
    cluster: str = "sandbox"
    app_service: str = "clinician-workflow-app"
    sidekiq_service: str = "clinician-workflow-sidekiq"
    extra: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        checks: list[tuple[str, bool, str]] = [
            ("app_tasks", 1 <= self.app_tasks <= 64, "between 1 and 64"),
            ("threads", 1 <= self.threads <= 1024, "between 1 and 1024"),
            ("backlog", self.backlog >= 0, ">= 0"),
            ("service_ms", self.service_ms > 0, "> 0"),
            ("cpu_ms", 0 <= self.cpu_ms <= self.min_mean_ms(), "between 0 and the smallest mean service time"),
            ("sidekiq_tasks", 0 <= self.sidekiq_tasks <= 64, "between 0 and 64"),
            ("sidekiq_concurrency", 1 <= self.sidekiq_concurrency <= 1024, "between 1 and 1024"),
            ("job_ms", self.job_ms > 0 and self.job_ms >= self.cpu_ms, "> 0 and >= cpu_ms"),
            ("error_rate", 0.0 <= self.error_rate <= 1.0, "between 0 and 1"),
            ("error_above_rps", self.error_above_rps is None or self.error_above_rps > 0, "> 0 (or unset)"),
            ("mem_growth_kb", self.mem_growth_kb >= 0, ">= 0"),
            ("mem_limit_mb", self.mem_limit_mb > 0, "> 0"),
            ("records", 1 <= self.records <= 2_000_000, "between 1 and 2000000"),
        ]
        for name, ok, want in checks:
            if not ok:
                raise SandboxConfigError(f"sandbox {name} ({_flag(name)}) must be {want}, got {getattr(self, name)!r}")
        if self.service_dist not in SERVICE_DISTS:
            raise SandboxConfigError(
                f"sandbox service_dist (--service-dist) must be one of {', '.join(SERVICE_DISTS)}, "
                f"got {self.service_dist!r}"
            )
        for name, ms in self.endpoint_ms:
            if name not in ENDPOINT_NAMES:
                raise SandboxConfigError(
                    f"sandbox endpoint_ms (--endpoint-ms): unknown endpoint {name!r}; "
                    f"known: {', '.join(ENDPOINT_NAMES)}"
                )
            if not ms > 0:
                raise SandboxConfigError(f"sandbox endpoint_ms (--endpoint-ms) for {name} must be > 0, got {ms!r}")
        if self.require_keys is not None and (len(self.require_keys) != 2 or not all(self.require_keys)):
            raise SandboxConfigError("sandbox require_keys must be two non-empty strings (api key, app key)")

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
    def from_settings(cls, settings: SandboxSettings, **overrides: Any) -> SandboxConfig:
        """From an experiment's ``[sandbox]`` table (``capacity.plan.experiment.SandboxSettings``)."""
        names = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in settings.model_dump().items() if k in names}
        return cls(**{**values, **overrides})

    def to_json(self, *, with_keys: bool = True) -> str:
        data = dataclasses.asdict(self)
        data.pop("extra", None)
        if not with_keys:
            data["require_keys"] = None
        return json.dumps(data)

    @classmethod
    def from_json(cls, text: str) -> SandboxConfig:
        data = json.loads(text)
        if data.get("require_keys") is not None:
            data["require_keys"] = tuple(data["require_keys"])
        data["endpoint_ms"] = tuple((str(n), float(ms)) for n, ms in data.get("endpoint_ms") or ())
        return cls(**data)
