"""Sizing production from a staging run (docs/design.md, "Analysis and sizing").

The rules are ``capacity.size.rules`` (shared with ``capacity scale`` and the soak): demand = peak x
(1 + unmodelled share) x growth; per-task capacity = the run's SLO capacity / staging app tasks;
tasks by throughput = demand x (1 + throughput headroom) / per-task capacity; when CPU per stage is
known, tasks by CPU = demand / the per-task rate at which CPU reaches ``cpu_target`` (production
autoscales on CPU > 60%); the larger binds and the recommendation says which. Its ``chain`` shows
every step with its source, ``app_tasks_range`` the count over the capacity's interval, ``limits``
the production-scale limits and ``extrapolation`` how far past the staging size the answer reaches.

N+1 here means: one spare task beyond what the peak needs, so losing any one task (a deploy, a
crash) still leaves the peak within the headroom. Because tasks are rounded up to a
whole number per zone, the spare is often already there; it is added only when it is not. (Losing a
whole zone is a different question: ``figures["zone_loss_tasks"]`` gives the count that survives it.)

Sidekiq tasks come from measured jobs per request (``m_jobs_per_s`` / goodput, else the workload's
``enqueues_jobs``) and the per-task drain rate (the most jobs/s one Sidekiq task completed at a
stage whose queue grew, else the most it completed at all: then a lower bound on drain capacity and
the task count errs high). Memory per task is the measured peak with 25% headroom, in 256 MiB steps.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from capacity.analyze.run_analysis import RunAnalysis, json_safe
from capacity.analyze.table import StageTable, normalise_stages
from capacity.core.errors import CapacityError
from capacity.core.models import Estimate
from capacity.plan.experiment import Cluster, Production, Workload
from capacity.size import rules
from capacity.size.capacity_range import bracket_of, bracket_stages, range_interval
from capacity.size.chain import ChainInputs, linear_chain
from capacity.size.cpu import cpu_at_peak, cpu_line, cpu_per_task_at_target
from capacity.size.rules import round_to_zones
from capacity.size.scenarios import SizingAsk, demand_rps, endpoint_costs, one_x_rpm, scenario_peak

MEM_HEADROOM = 1.25
MEM_STEP_MIB = 256
SIGNALS = ("saturation", "slo_capacity", "knee")


@dataclass
class Recommendation:
    """A production size; ``inputs`` holds every input and ``figures`` every intermediate, by name.

    ``expected_utilisation`` is throughput, not CPU: demand at peak over the recommended tasks' SLO
    capacity (the share of the capacity used). ``expected_cpu_utilisation`` is the CPU figure."""

    app_tasks: int
    sidekiq_tasks: int
    mem_mib_per_task: int | None
    expected_utilisation: float
    binding_constraint: str
    per_task_rps: float
    peak_rps: float
    inputs: dict[str, Any] = field(default_factory=dict)
    figures: dict[str, Any] = field(default_factory=dict)
    scenarios: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    app_tasks_range: list[int] = field(default_factory=list)
    """[lo, hi] app tasks over the per-task capacity's interval (always contains ``app_tasks``)."""
    chain: list[dict[str, Any]] = field(default_factory=list)
    """How the count was reached: ``{step, value, source, extrapolated}``, one step a line."""
    limits: list[dict[str, Any]] = field(default_factory=list)
    """``[production.limits]`` against the recommended size: ``{name, need, limit, ok, how}``."""
    extrapolation: dict[str, Any] = field(default_factory=dict)
    """Largest staging size measured and the ratio of the answer to it."""
    expected_cpu_utilisation: float | None = None
    """Each task's CPU share at peak on ``app_tasks`` (from the CPU-vs-goodput line); None without CPU."""

    def to_dict(self) -> dict[str, Any]:
        return json_safe(
            {
                "app_tasks": self.app_tasks,
                "sidekiq_tasks": self.sidekiq_tasks,
                "mem_mib_per_task": self.mem_mib_per_task,
                "expected_utilisation": self.expected_utilisation,
                "binding_constraint": self.binding_constraint,
                "per_task_rps": self.per_task_rps,
                "peak_rps": self.peak_rps,
                "inputs": self.inputs,
                "figures": self.figures,
                "scenarios": self.scenarios,
                "notes": list(self.notes),
                "app_tasks_range": list(self.app_tasks_range),
                "chain": list(self.chain),
                "limits": list(self.limits),
                "extrapolation": dict(self.extrapolation),
                "expected_cpu_utilisation": self.expected_cpu_utilisation,
            }
        )


def default_peak_rps(production: Production, workload: Workload | None) -> tuple[float | None, str]:
    """The seed's 1x profile in requests/s: ``production.peak_rpm``, else the endpoints' rpm (or flows)."""
    rpm, source = one_x_rpm(production, workload)
    return (sum(rpm.values()) / 60.0, source) if rpm else (None, "")


def choose_capacity(analysis: RunAnalysis, signal: str | None) -> tuple[Estimate, str, list[str]]:
    """The run capacity to size from: SLO capacity when reached, else measured saturation.

    SLO capacity is preferred because it is the rate at which every guard held; sizing at 60% of
    saturation would allow latencies the SLO forbids. Unreached figures are lower bounds, so the
    task count they give errs high (said in the notes).
    """
    notes: list[str] = []
    if signal is not None:
        if signal not in SIGNALS:
            raise CapacityError(f"sizing signal must be one of {', '.join(SIGNALS)}, got {signal!r}")
        est = getattr(analysis, signal)
        if est.value is None:
            raise CapacityError(f"sizing: the run has no {signal} figure ({est.note or 'no value'})")
        return est, signal, notes
    for name in ("slo_capacity", "saturation"):
        est = getattr(analysis, name)
        if est.value is not None and est.reached:
            return est, name, notes
    for name in ("saturation", "slo_capacity"):
        est = getattr(analysis, name)
        if est.value is not None:
            notes.append(f"{name} was not reached: sized from its lower bound, so the task count errs high")
            return est, name, notes
    raise CapacityError("sizing: the run has no capacity figure (insufficient data)")


def _sidekiq(table: StageTable, cluster: Cluster, workload: Workload | None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "jobs_per_request": None,
        "jobs_per_request_source": None,
        "drain_jobs_per_s_per_task": None,
        "drain_source": None,
    }
    jobs = table.column("jobs_per_s")
    if jobs is not None:
        ok = np.isfinite(jobs) & (table.achieved > 0)
        if ok.any():
            out["jobs_per_request"] = float(np.median(jobs[ok] / table.achieved[ok]))
            out["jobs_per_request_source"] = "median of m_jobs_per_s / achieved_rps over stages"
            if cluster.sidekiq_tasks > 0:
                growth = table.column("queue_growth_per_s")
                grew = ok & (np.nan_to_num(growth, nan=0.0) > 0.5) if growth is not None else np.zeros_like(ok)
                if grew.any():
                    out["drain_jobs_per_s_per_task"] = float(np.max(jobs[grew]) / cluster.sidekiq_tasks)
                    out["drain_source"] = "most jobs/s per Sidekiq task at a stage whose queue grew (measured limit)"
                else:
                    out["drain_jobs_per_s_per_task"] = float(np.max(jobs[ok]) / cluster.sidekiq_tasks)
                    out["drain_source"] = (
                        "most jobs/s per Sidekiq task seen; the queue never grew, so this is a "
                        "lower bound on drain capacity"
                    )
    if out["jobs_per_request"] is None and workload is not None and workload.endpoints:
        total = sum(e.share_weight for e in workload.endpoints)
        out["jobs_per_request"] = sum(e.share_weight * e.enqueues_jobs for e in workload.endpoints) / total
        out["jobs_per_request_source"] = "workload endpoints' enqueues_jobs, weighted by share"
    return out


def _size_one(
    peak_rps: float,
    *,
    production: Production,
    per_task: float,
    cpu_per_task: float | None,
    sidekiq: dict[str, Any],
    cluster: Cluster,
) -> dict[str, Any]:
    """One peak through the rule set (``capacity.size.rules``): demand, the two rules, zones, N+1."""
    need = rules.demand(peak_rps, production)
    raw_capacity = rules.tasks_by_throughput(need, per_task, production)
    raw_cpu = rules.tasks_by_cpu(need, cpu_per_task)
    raw, rule = rules.binding(raw_capacity, raw_cpu)
    tasks = rules.app_tasks(raw, production)
    zones = production.zones
    zone_loss = (
        round_to_zones(raw * zones / (zones - 1), zones, n_plus_one=False, min_tasks=production.min_tasks)
        if zones > 1
        else None
    )
    jpr, drain = sidekiq.get("jobs_per_request"), sidekiq.get("drain_jobs_per_s_per_task")
    if jpr is not None and drain:
        jobs = need * jpr
        sk = rules.app_tasks(rules.throughput_need(jobs, production) / drain, production) if jobs > 0 else 0
        sk_how = "peak jobs/s x (1 + throughput_headroom) / drain per task, zones and N+1 as the app tasks"
    else:
        sk = math.ceil(tasks * cluster.sidekiq_tasks / cluster.app_tasks) if cluster.sidekiq_tasks else 0
        sk = zones * math.ceil(sk / zones) if sk else 0
        sk_how = "scaled with app tasks (staging ratio): no measured jobs per request or drain rate"
    return {
        "peak_rps": peak_rps,
        "demand_rps": need,
        "throughput_need_rps": rules.throughput_need(need, production),
        "app_tasks": tasks,
        "raw_tasks_capacity": raw_capacity,
        "raw_tasks_cpu": raw_cpu,
        "raw_tasks": raw,
        "zoned_tasks": rules.zoned(raw, production),
        "binding_constraint": "cpu" if rule == "cpu" else "capacity",
        "expected_utilisation": need / (tasks * per_task),
        "zone_loss_tasks": zone_loss,
        "sidekiq_tasks": sk,
        "sidekiq_method": sk_how,
        "peak_jobs_per_s": need * jpr if jpr is not None else None,
    }


def recommend(
    analysis: RunAnalysis,
    stages: pd.DataFrame,
    cluster: Cluster,
    production: Production,
    workload: Workload | None = None,
    *,
    ask: SizingAsk | None = None,
    endpoints: pd.DataFrame | None = None,
) -> Recommendation:
    """Production app and Sidekiq tasks, memory per task, utilisation at peak and the binding limit.

    ``endpoints`` (the run's per-endpoint table) gives each endpoint's cost, so a scenario whose mix
    differs from the run's is sized by what its requests cost, not by their count."""
    ask = ask or SizingAsk()
    table = normalise_stages(stages)
    est, chosen, notes = choose_capacity(analysis, ask.signal)
    assert est.value is not None
    per_task = est.value / cluster.app_tasks
    if per_task <= 0:
        raise CapacityError(f"sizing: the run's {chosen} is {est.value:g} rps; nothing to size from")
    line = cpu_line(table, "cpu_pct")
    cpu_per_task = cpu_per_task_at_target(line, production.cpu_target, cluster)
    sidekiq = _sidekiq(table, cluster, workload)
    costs, cost_source = endpoint_costs(workload, stages, endpoints)
    peaks, written, main_name, peak_source = _scenario_peaks(
        production, workload, costs, scenario=ask.scenario, peak_rps=ask.peak_rps
    )
    results = _size_scenarios(peaks, production, cluster, per_task=per_task, cpu_per_task=cpu_per_task, sidekiq=sidekiq)
    main = results[main_name]
    mem, mem_src = _memory(table, cluster)
    if cpu_per_task is None:
        notes.append("no CPU per stage: only the throughput constraint was applied")
    inputs = {
        "capacity_signal": chosen,
        "capacity_rps": est.value,
        "capacity_reached": est.reached,
        "capacity_interval": [est.lo, est.hi],
        "capacity_set_by": est.signal,
        **_staging_inputs(cluster),
        "peak_rps": peaks[main_name],
        "peak_source": peak_source if main_name == "1x peak" else main_name,
        **_production_inputs(production),
        "scenario": main_name,
    }
    figures = {
        "per_task_rps": per_task,
        "per_task_rps_formula": f"{chosen} {est.value:.4g} rps / {cluster.app_tasks} tasks",
        "cpu_line": {"intercept_pct": line[0], "pct_per_rps": line[1]} if line else None,
        "cpu_per_task_rps_at_target": cpu_per_task,
        "app_tasks_formula": "max(demand x (1 + throughput_headroom) / per_task_rps, demand / cpu_per_task_rps_at_"
        "target), ceil, at least min_tasks, [+1 if N+1], rounded up to a multiple of zones",
        "memory_source": mem_src,
        "endpoint_cost": costs,
        "endpoint_cost_source": cost_source,
        "demand_formula": "sum over endpoints of rate x cost (mix-equivalent req/s) x (1 + unmodelled_share) x growth",
        **sidekiq,
        **{k: v for k, v in main.items() if k not in ("app_tasks", "sidekiq_tasks", "expected_utilisation")},
    }
    bracket = bracket_of(table, est, chosen, analysis.saturation)
    why = ChainInputs(
        inputs["peak_source"],
        chosen,
        est,
        cluster.app_tasks,
        cpu_per_task,
        line,
        mem,
        mem_src,
        bracket,
        bracket_stages(table, bracket),
    )
    return _assemble(main, why, production, cluster, _Said(inputs, figures, notes), results, written)


class _Said(NamedTuple):
    """What the recommendation reports beside its numbers: the inputs, the worked figures, the notes."""

    inputs: dict[str, Any]
    figures: dict[str, Any]
    notes: list[str]


def _assemble(
    main: dict[str, Any],
    why: ChainInputs,
    production: Production,
    cluster: Cluster,
    said: _Said,
    results: dict[str, dict[str, Any]],
    written: dict[str, float],
) -> Recommendation:
    """The recommendation with its chain, range, limits and extrapolation (the contract of issue 20)."""
    inputs, figures, notes = said
    est, n = why.estimate, why.staging_tasks
    lo_rps, hi_rps, how = range_interval(est, why.bracket)
    lo = lo_rps / n if lo_rps is not None else None
    hi = hi_rps / n if hi_rps is not None else None
    span = rules.tasks_range(main["demand_rps"], lo, hi, main["raw_tasks_cpu"], production)
    if span is None:
        notes.append(f"the {why.signal} has no interval: the task count's range is its point")
    else:
        figures["app_tasks_range_from"] = how
        figures["capacity_range_rps"] = [lo_rps, hi_rps]
    limits = rules.check_limits(main["app_tasks"], main["sidekiq_tasks"], cluster, production)
    binding = (
        f"CPU reaches cpu_target {production.cpu_target:.0%} first"
        if main["binding_constraint"] == "cpu"
        else f"{why.signal.replace('_', ' ')} per task with {production.throughput_headroom:.0%} throughput headroom"
    )
    return Recommendation(
        app_tasks=main["app_tasks"],
        sidekiq_tasks=main["sidekiq_tasks"],
        mem_mib_per_task=why.mem_mib,
        expected_utilisation=main["expected_utilisation"],
        binding_constraint=binding,
        per_task_rps=est.value / n if est.value else 0.0,
        peak_rps=main["peak_rps"],
        inputs=inputs,
        figures=figures,
        scenarios={name: {"rps": written[name], **{k: r[k] for k in SCENARIO_KEYS}} for name, r in results.items()},
        notes=notes + rules.limit_warnings(limits),
        app_tasks_range=rules.widen(span, main["app_tasks"]),
        chain=[s.to_dict() for s in linear_chain(main, why, production)],
        limits=limits,
        extrapolation=rules.extrapolation(main["app_tasks"], n),
        expected_cpu_utilisation=cpu_at_peak(why.cpu_line, main["demand_rps"] / main["app_tasks"], n),
    )


SCENARIO_KEYS = ("peak_rps", "demand_rps", "app_tasks", "sidekiq_tasks", "expected_utilisation", "binding_constraint")
"""Per scenario: ``rps`` as written, ``peak_rps`` its mix-equivalent load, ``demand_rps`` with the
unmodelled share and growth on top."""


def _size_scenarios(
    peaks: dict[str, float],
    production: Production,
    cluster: Cluster,
    *,
    per_task: float,
    cpu_per_task: float | None,
    sidekiq: dict[str, Any],
) -> dict[str, dict[str, Any]]:
    """``_size_one`` for every scenario's peak, with the production settings."""
    return {
        name: _size_one(
            rps, production=production, per_task=per_task, cpu_per_task=cpu_per_task, sidekiq=sidekiq, cluster=cluster
        )
        for name, rps in peaks.items()
    }


def _scenario_peaks(
    production: Production,
    workload: Workload | None,
    costs: dict[str, float],
    *,
    scenario: str | None,
    peak_rps: float | None,
) -> tuple[dict[str, float], dict[str, float], str, str]:
    """Every scenario's mix-equivalent peak (req/s) and its rate as written, the one to recommend for,
    and where the 1x peak came from."""
    peaks: dict[str, float] = {}
    written: dict[str, float] = {}
    if peak_rps is not None:
        peaks["1x peak"] = written["1x peak"] = peak_rps
        peak_source = "--peak-rpm / peak_rps argument (requests/s of the run's mix)"
    else:
        rpm, peak_source = one_x_rpm(production, workload)
        if rpm:
            peaks["1x peak"], written["1x peak"] = demand_rps(rpm, costs), sum(rpm.values()) / 60.0
    for sc in production.scenarios:
        p = scenario_peak(sc, workload, costs)
        peaks[sc.name], written[sc.name] = p["demand_rps"], p["rps"]
    if scenario is not None:
        if scenario not in peaks:
            raise CapacityError(f"sizing: unknown scenario {scenario!r} (known: {', '.join(peaks) or 'none'})")
        return peaks, written, scenario, peak_source
    if "1x peak" not in peaks:
        raise CapacityError(
            "sizing: no production peak (set production.peak_rpm, endpoint rpm or flows, or --peak-rpm)"
        )
    return peaks, written, "1x peak", peak_source


def _staging_inputs(cluster: Cluster) -> dict[str, Any]:
    return {
        "staging_app_tasks": cluster.app_tasks,
        "staging_sidekiq_tasks": cluster.sidekiq_tasks,
        "staging_cpu_units_per_task": cluster.cpu_units_per_task,
        "staging_mem_mib_per_task": cluster.mem_mib_per_task,
    }


def _production_inputs(production: Production) -> dict[str, Any]:
    return {
        "growth": production.growth,
        "unmodelled_share": production.unmodelled_share,
        "target_utilisation": production.cpu_target,
        "cpu_target": production.cpu_target,
        "throughput_headroom": production.throughput_headroom,
        "zones": production.zones,
        "n_plus_one": production.n_plus_one,
        "min_tasks": production.min_tasks,
    }


def _memory(table: StageTable, cluster: Cluster) -> tuple[int | None, str]:
    mb = table.column("mem_mb_max")
    if mb is not None:  # column() is None unless some value is finite
        peak = float(np.nanmax(mb))
        src = f"peak m_mem_mb_max {peak:.0f} MiB x {MEM_HEADROOM} headroom"
    else:
        pct = table.column("mem_pct_max")
        pct = pct if pct is not None else table.column("mem_pct")
        if pct is None:
            return None, "no memory metric in the stages"
        pct_max = float(np.nanmax(pct))
        peak = pct_max / 100.0 * cluster.mem_mib_per_task
        src = f"peak memory {pct_max:.1f}% of {cluster.mem_mib_per_task} MiB x {MEM_HEADROOM} headroom"
    return int(MEM_STEP_MIB * math.ceil(peak * MEM_HEADROOM / MEM_STEP_MIB)), src
