"""The one sizing rule set: every command that turns capacity into production tasks goes through here.

``search``, ``size``, ``scale`` (one size or a curve), ``soak --at recommended``, ``nightly`` and the
notebook all size with these functions, so the same data gives the same task count whichever
command computed it (docs/design.md, "Analysis and sizing")::

    demand            = peak x (1 + unmodelled_share) x growth                (req/s of the run's mix)
    per-task capacity = SLO capacity / staging app tasks        (the rate every guard held at; never saturation)
    tasks by throughput = demand x (1 + throughput_headroom) / per-task capacity
    tasks by CPU        = demand / per-task rate at which CPU reaches cpu_target
    raw tasks         = the larger of the two (the binding rule)
    zones             = ceil(raw), at least min_tasks, rounded up to a multiple of zones
    N+1               = one spare task beyond ceil(raw) when the zone rounding did not leave one

The throughput headroom applies to req/s and the CPU target to CPU: neither divides the other.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from capacity.plan.experiment import Cluster, Production

DEFAULT_PUMA_THREADS = 5
"""Puma's default thread count, used for the connection limits when ``[cluster] puma_threads`` is unset."""


@dataclass(frozen=True)
class Step:
    """One line of the chain: what was reached, its value, where it came from, and how far it reaches."""

    step: str
    value: Any
    source: str
    extrapolated: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"step": self.step, "value": self.value, "source": self.source, "extrapolated": self.extrapolated}


def demand(peak_rps: float, production: Production) -> float:
    """Production's demand: the peak with the unmodelled share on top, then growth (separate factors)."""
    return peak_rps * (1.0 + production.unmodelled_share) * production.growth


def throughput_need(demand_rps: float, production: Production) -> float:
    """The SLO capacity production must have in all: demand plus the throughput headroom (req/s)."""
    return demand_rps * (1.0 + production.throughput_headroom)


def tasks_by_throughput(demand_rps: float, per_task_rps: float, production: Production) -> float:
    return throughput_need(demand_rps, production) / per_task_rps


def tasks_by_cpu(demand_rps: float, cpu_per_task_rps: float | None) -> float | None:
    """Tasks that keep CPU at or under the target at peak; None without a measured CPU line."""
    return demand_rps / cpu_per_task_rps if cpu_per_task_rps else None


def zoned(raw_tasks: float, production: Production) -> int:
    """Whole tasks, at least ``min_tasks``, a multiple of ``zones`` (before N+1)."""
    need = max(math.ceil(raw_tasks - 1e-9), production.min_tasks, 1)
    return production.zones * math.ceil(need / production.zones)


def round_to_zones(raw_tasks: float, zones: int, *, n_plus_one: bool, min_tasks: int = 1) -> int:
    """Whole tasks, a multiple of ``zones``, at least ``min_tasks``; with N+1, one spare beyond ``raw``."""
    need = max(math.ceil(raw_tasks - 1e-9), 0)
    if n_plus_one:
        need += 1
    need = max(need, min_tasks, 1)
    return zones * math.ceil(need / zones)


def app_tasks(raw_tasks: float, production: Production) -> int:
    """The production task count for a raw need: zones, then N+1 (equal to ``round_to_zones``)."""
    return round_to_zones(raw_tasks, production.zones, n_plus_one=production.n_plus_one, min_tasks=production.min_tasks)


def binding(raw_throughput: float, raw_cpu: float | None) -> tuple[float, str]:
    """(raw tasks, rule): the larger of the throughput and CPU needs binds."""
    if raw_cpu is not None and raw_cpu > raw_throughput:
        return raw_cpu, "cpu"
    return raw_throughput, "throughput"


def tasks_range(
    demand_rps: float,
    per_task_lo: float | None,
    per_task_hi: float | None,
    raw_cpu: float | None,
    production: Production,
) -> list[int] | None:
    """[lo, hi] task counts over the per-task capacity interval (its top gives the fewest tasks)."""
    if per_task_lo is None or per_task_hi is None or not per_task_lo > 0:
        return None
    lo = app_tasks(binding(tasks_by_throughput(demand_rps, per_task_hi, production), raw_cpu)[0], production)
    hi = app_tasks(binding(tasks_by_throughput(demand_rps, per_task_lo, production), raw_cpu)[0], production)
    return [min(lo, hi), max(lo, hi)]


def widen(range_: list[int] | None, point: int) -> list[int]:
    """A range that contains its point (the point alone when there is no range)."""
    if range_ is None:
        return [point, point]
    return [min(range_[0], point), max(range_[1], point)]


def extrapolation(tasks: int, largest_measured: int) -> dict[str, Any]:
    """How far the answer reaches past the largest staging size measured."""
    ratio = tasks / largest_measured if largest_measured > 0 else None
    return {
        "largest_measured_tasks": largest_measured,
        "ratio": ratio,
        "extrapolated": bool(ratio is not None and ratio > 1.0),
    }


def past(value: float, largest_measured: int) -> str:
    """' (extrapolated: 4.5x the largest measured size, 2 tasks)' when ``value`` is beyond it."""
    if largest_measured <= 0 or value <= largest_measured:
        return ""
    return f" (extrapolated: {value / largest_measured:.2g}x the largest measured size, {largest_measured} tasks)"


def connections(app: int, sidekiq: int, cluster: Cluster) -> tuple[float, str]:
    """Threads that may each hold a connection: app tasks x Puma threads + Sidekiq tasks x concurrency."""
    threads = cluster.puma_threads or DEFAULT_PUMA_THREADS
    assumed = "" if cluster.puma_threads else f" (puma_threads unset: Puma's default {DEFAULT_PUMA_THREADS})"
    need = app * threads + sidekiq * cluster.sidekiq_concurrency
    how = f"{app} app tasks x {threads} threads{assumed} + {sidekiq} Sidekiq tasks x {cluster.sidekiq_concurrency}"
    return float(need), how


def check_limits(app: int, sidekiq: int, cluster: Cluster, production: Production) -> list[dict[str, Any]]:
    """Each set ``[production.limits]`` entry against the recommended size: ``{name, need, limit, ok, how}``."""
    lim = production.limits
    threads, how = connections(app, sidekiq, cluster)
    rows: list[tuple[str, float, float | None, str]] = [
        (
            "db_max_connections",
            threads * lim.db_connections_per_thread,
            lim.db_max_connections,
            f"({how}) x {lim.db_connections_per_thread:g} db_connections_per_thread",
        ),
        ("redis_maxclients", threads, lim.redis_maxclients, how),
        ("max_tasks", float(app), lim.max_tasks, f"{app} app tasks"),
    ]
    return [
        {"name": name, "need": need, "limit": limit, "ok": need <= limit, "how": how}
        for name, need, limit, how in rows
        if limit is not None
    ]


def limit_warnings(limits: list[dict[str, Any]]) -> list[str]:
    """One line per exceeded limit, naming the limit, the need and how the need was figured."""
    return [
        f"production limit {r['name']} = {r['limit']:g} is exceeded: the recommended size needs {r['need']:g} "
        f"({r['how']})"
        for r in limits
        if not r["ok"]
    ]


def soak_rate(rec: dict[str, Any], staging_tasks: int) -> tuple[float, str]:
    """The staging rate equivalent to production's demand on the recommended tasks (``soak --at recommended``).

    Each recommended task carries demand / app_tasks at peak; staging's tasks carry the same per task."""
    figures = rec.get("figures") or {}
    peak = float(rec["peak_rps"])
    demand_rps = figures.get("demand_rps")
    if demand_rps is None:  # a recommendation written before the rule set: rebuild its demand
        inputs = rec.get("inputs") or {}
        demand_rps = peak * (1.0 + float(inputs.get("unmodelled_share") or 0.0)) * float(inputs.get("growth") or 1.0)
    tasks = int(rec["app_tasks"])
    rate = float(demand_rps) * staging_tasks / tasks
    return rate, f"demand {float(demand_rps):.4g} req/s x {staging_tasks} staging / {tasks} recommended app tasks"
