"""Production scenarios in the seed's terms, turned into the load the run's capacity is measured in.

The run measures capacity in requests/s *of its own mix*. A scenario with a different mix (a check-in
peak is all check-in calls; a reminder burst is mostly demographics) needs each endpoint's cost: the
share of capacity one of its requests takes. Here that cost is the endpoint's median latency at the
lowest passing stage (thread time per request, before queueing adds to it: Puma's threads are the
pool every request holds while it runs), relative to the mix's weighted mean, so the run's own mix
costs exactly 1 per request. Without per-endpoint results every request costs the same (the mix
weights alone). A scenario's demand is then sum(rate x cost) in mix-equivalent requests/s.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from capacity.analyze.table import is_valid_verdict
from capacity.plan.production import Production, Scenario, scenario_rpm
from capacity.plan.workload import Workload


@dataclass(frozen=True)
class SizingAsk:
    """What a sizing is asked for beyond ``[production]``: which scenario leads, a peak given outright, and
    which run capacity to size from (None each: the first scenario or 1x peak, the file's peak, SLO capacity
    when reached)."""

    scenario: str | None = None
    peak_rps: float | None = None
    signal: str | None = None


EQUAL_COST = "mix weights (no per-endpoint results): every request costs the same"


def endpoint_costs(
    workload: Workload | None, stages: pd.DataFrame, endpoints: pd.DataFrame | None
) -> tuple[dict[str, float], str]:
    """Endpoint -> relative cost per request (the mix's mean is 1), and where it came from."""
    if workload is None or not workload.endpoints:
        return {}, EQUAL_COST
    weights = {e.name: e.share_weight for e in workload.endpoints}
    equal = dict.fromkeys(weights, 1.0)
    if endpoints is None or endpoints.empty or "p50_ms" not in endpoints or "verdict" not in stages:
        return equal, EQUAL_COST
    passing = stages[[v == "pass" and is_valid_verdict(v) for v in stages["verdict"]]]
    if passing.empty:
        return equal, EQUAL_COST
    first = passing.sort_values("target_rps").iloc[0]
    index = int(first["index"]) if "index" in first else int(passing.sort_values("target_rps").index[0])
    rows = endpoints[(endpoints["stage"] == index) & (endpoints["requests"] > 0)]
    p50 = {str(r["endpoint"]): float(r["p50_ms"]) for _, r in rows.iterrows() if pd.notna(r["p50_ms"])}
    if set(p50) != set(weights) or any(v <= 0 for v in p50.values()):
        return equal, EQUAL_COST + f" (stage {index} lacks a latency for some endpoint)"
    mean = sum(weights[n] * p50[n] for n in weights) / sum(weights.values())
    costs = {n: p50[n] / mean for n in weights}
    return costs, (
        f"median latency per endpoint at the lowest passing stage ({first['target_rps']:g} req/s), "
        "relative to the mix's mean: thread time per request"
    )


def demand_rps(rpm: dict[str, float], costs: dict[str, float]) -> float:
    """Mix-equivalent requests/s of per-endpoint requests/min (an endpoint without a cost counts as 1)."""
    return sum(r / 60.0 * costs.get(name, 1.0) for name, r in rpm.items())


def one_x_rpm(production: Production, workload: Workload | None) -> tuple[dict[str, float] | None, str]:
    """The 1x peak per endpoint: ``production.peak_rpm``, else the endpoints' rpm (written or from flows)."""
    if production.peak_rpm:
        return dict(production.peak_rpm), "production.peak_rpm (1x profile)"
    if workload is not None:
        rpm = {e.name: e.rpm for e in workload.endpoints if e.rpm is not None}
        if rpm:
            source = "workload flows (1x profile)" if workload.flows else "workload endpoints' rpm (1x profile)"
            return rpm, source
    return None, ""


def scenario_peak(sc: Scenario, workload: Workload | None, costs: dict[str, float]) -> dict[str, float]:
    """A scenario's requests/s (as written) and its demand in mix-equivalent requests/s."""
    rpm = scenario_rpm(sc, workload) if workload is not None else (dict(sc.rpm) if sc.rpm else None)
    if rpm is None:
        rps = float(sc.rps or 0.0)
        return {"rps": rps, "demand_rps": rps}
    return {"rps": sum(rpm.values()) / 60.0, "demand_rps": demand_rps(rpm, costs)}


def grossed_up(demand: float, production: Production) -> float:
    """Demand with the unmodelled share on top, then growth: the two are separate factors."""
    return demand * (1.0 + production.unmodelled_share) * production.growth
