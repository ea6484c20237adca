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


class Production(Strict):
    """The load production must carry and how much headroom to leave."""

    peak_rpm: dict[str, PositiveFloat] = Field(default_factory=dict)
    growth: float = Field(1.0, ge=1.0)
    """Future growth of the modelled flows (more users), applied on top of everything else."""
    unmodelled_share: float = Field(0.0, ge=0.0, le=10.0)
    """Traffic beyond the flows (e.g. 0.2 = Clinical Staff facing apps add 20% on top), not growth."""
    target_utilisation: float = Field(0.6, gt=0, le=1)
    zones: int = Field(3, ge=1)
    n_plus_one: bool = True
    min_tasks: int = Field(2, ge=1)
    scenarios: list[Scenario] = Field(default_factory=list)


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
