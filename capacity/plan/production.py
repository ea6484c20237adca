"""``[production]``: the load production must carry, in the seed's terms, and how much headroom to leave.

Scenarios name flows with their hourly volumes or multipliers of 1x (a reminder burst is pre-check-in
at 2x); sizing turns each into per-endpoint rates and those into capacity through the per-endpoint
cost measured in the run. ``unmodelled_share`` (traffic no flow describes, e.g. the Clinical Staff
facing apps) and ``growth`` (more users later) are separate factors, both shown in the recommendation.
"""

from __future__ import annotations

from pydantic import Field, model_validator

from capacity.plan.base import PositiveFloat, Strict
from capacity.plan.workload import Workload, endpoint_rpm


class FlowVolume(Strict):
    """A flow's volume in a scenario: ``per_hour`` flows, or ``multiplier`` times its 1x volume."""

    per_hour: PositiveFloat | None = None
    multiplier: PositiveFloat | None = None

    @model_validator(mode="after")
    def _one(self) -> FlowVolume:
        if (self.per_hour is None) == (self.multiplier is None):
            raise ValueError("a flow volume needs exactly one of 'per_hour' or 'multiplier'")
        return self


class Scenario(Strict):
    """A production load to size for: named flows (others absent), per-endpoint rpm, or a whole-mix rps."""

    name: str = Field(min_length=1)
    flows: dict[str, FlowVolume] | None = None
    rpm: dict[str, PositiveFloat] | None = None
    rps: PositiveFloat | None = None
    """Requests/s of the run's own mix (the least informative form: no per-endpoint cost applies)."""
    note: str = ""

    @model_validator(mode="after")
    def _one(self) -> Scenario:
        if sum(x is not None for x in (self.flows, self.rpm, self.rps)) != 1:
            raise ValueError("a scenario needs exactly one of 'flows', 'rpm' or 'rps'")
        return self


class Limits(Strict):
    """Production-scale limits staging never shows: checked against the recommended size.

    Connections needed = (app tasks x Puma threads + Sidekiq tasks x concurrency) x
    ``db_connections_per_thread`` for the database, and app tasks x Puma threads + Sidekiq tasks x
    concurrency for Redis (each thread holds at most one of each). Unset limits are not checked.
    """

    db_max_connections: int | None = Field(None, ge=1)
    """The database's ``max_connections`` (minus what other clients hold)."""
    db_connections_per_thread: float = Field(1.0, gt=0)
    """Connections one Puma thread or Sidekiq worker holds (1: Rails' pool is one per thread)."""
    redis_maxclients: int | None = Field(None, ge=1)
    """Redis ``maxclients`` (minus what other clients hold)."""
    max_tasks: int | None = Field(None, ge=1)
    """The most app tasks the ECS service (or the account's quota) allows."""


class Production(Strict):
    """The load production must carry and how much headroom to leave.

    Two separate headroom settings, neither stacked on the other: ``throughput_headroom`` applies to
    req/s (spare SLO capacity beyond the demand at peak) and ``cpu_target`` to CPU (the autoscaling
    point production must stay under at peak). ``target_utilisation`` is the old name of ``cpu_target``.
    """

    peak_rpm: dict[str, PositiveFloat] = Field(default_factory=dict)
    growth: float = Field(1.0, ge=1.0)
    """Future growth of the modelled flows (more users), applied on top of everything else."""
    unmodelled_share: float = Field(0.0, ge=0.0, le=10.0)
    """Traffic beyond the flows (e.g. 0.2 = Clinical Staff facing apps add 20% on top), not growth."""
    target_utilisation: float | None = Field(None, gt=0, le=1)
    """Old name of ``cpu_target`` (still read; giving both with different values is an error)."""
    cpu_target: float = Field(0.6, gt=0, le=1)
    """CPU share each app task may reach at peak (production autoscales on CPU above it): 0.6 = 60%."""
    throughput_headroom: float = Field(0.2, ge=0.0, le=10.0)
    """Spare SLO capacity beyond the demand at peak, as a share of the demand: 0.2 = 20% (req/s).

    SLO capacity is already the rate at which every guard held, so this only covers what the run
    did not measure: peaks sharper than the stated one, the search's resolution and run-to-run
    variance (the ``app_tasks_range`` shows the measured interval)."""
    limits: Limits = Field(default_factory=Limits)  # type: ignore[arg-type]
    zones: int = Field(3, ge=1)
    n_plus_one: bool = True
    min_tasks: int = Field(2, ge=1)
    scenarios: list[Scenario] = Field(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _old_cpu_name(cls, data: object) -> object:
        """``target_utilisation`` (the old name) sets ``cpu_target`` unless that is given too."""
        if isinstance(data, dict) and data.get("target_utilisation") is not None:
            old, new = data["target_utilisation"], data.get("cpu_target")
            if new is not None and new != old:
                raise ValueError(
                    f"target_utilisation {old} and cpu_target {new} disagree: target_utilisation is the old "
                    "name of cpu_target, give one"
                )
            if new is None:
                data = {**data, "cpu_target": old}
        return data


def check_scenarios(production: Production, workload: Workload) -> None:
    """Every flow and endpoint a scenario names exists (a misspelt one would size for nothing)."""
    flows = {f.name for f in workload.flows}
    endpoints = {e.name for e in workload.endpoints}
    for i, sc in enumerate(production.scenarios):
        for name in sc.flows or {}:
            if name not in flows:
                known = ", ".join(sorted(flows)) or "none: add [[workload.flows]]"
                raise ValueError(f"[{i}] '{sc.name}': no workload flow '{name}' (known: {known})")
        for name in sc.rpm or {}:
            if name not in endpoints:
                raise ValueError(f"[{i}] '{sc.name}': no workload endpoint '{name}'")


def scenario_rpm(sc: Scenario, workload: Workload) -> dict[str, float] | None:
    """Requests/min per endpoint of a scenario; None for a whole-mix ``rps`` scenario."""
    if sc.rpm is not None:
        return dict(sc.rpm)
    if sc.flows is None:
        return None
    by_name = {f.name: f for f in workload.flows}
    per_hour = {
        name: v.per_hour if v.per_hour is not None else by_name[name].per_hour * (v.multiplier or 1.0)
        for name, v in sc.flows.items()
    }
    return endpoint_rpm(workload.flows, per_hour)
