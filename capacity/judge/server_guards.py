"""Server-side guards: CPU, memory, Puma pool, backlog and Sidekiq queues against ``[guards]``.

Pure: stage aggregates in, breach records out, each with the code of the rule that made it (never
read back from its text). A breach names the figure and, when the aggregates carry per-group keys
(``queue_growth_per_s[default]``), the queue or task as its ``scope``, because "a queue is growing"
is not actionable and "queue 'mailers' growing 3.2 jobs/s" is. A guard whose metric has no data is
*blind* (:func:`blind_queries`): reported by name, never silently passed.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Collection
from dataclasses import dataclass

from capacity.core.breach import STAGE, Breach
from capacity.core.outcomes import GuardCode
from capacity.plan.experiment import Guards


@dataclass(frozen=True)
class _Rule:
    code: GuardCode
    key: str
    limit: Callable[[Guards], float | None]
    breaks: Callable[[float, float], bool]  # (value, limit) -> the rule is broken
    text: Callable[[float, float, str], str]
    inputs: tuple[str, ...]
    """The queries the figure is read from (a guard with none of them answering is blind)."""


def _task(label: str) -> str:
    return f" (task {label})" if label else ""


def _queue(label: str) -> str:
    return f" '{label}'" if label else ""


_ABOVE = operator.gt
_AT_OR_BELOW = operator.le

RULES: tuple[_Rule, ...] = (
    _Rule(
        GuardCode.CPU,
        "cpu_pct",
        lambda g: g.max_cpu_pct,
        _ABOVE,
        lambda v, lim, lb: f"cpu {v:.0f}% > {lim:g}%{_task(lb)}",
        ("cpu_pct",),
    ),
    _Rule(
        GuardCode.SIDEKIQ_CPU,
        "sidekiq_cpu_pct",
        lambda g: g.max_cpu_pct,
        _ABOVE,
        lambda v, lim, lb: f"sidekiq cpu {v:.0f}% > {lim:g}%{_task(lb)}",
        ("sidekiq_cpu_pct",),
    ),
    _Rule(
        GuardCode.MEMORY,
        "mem_pct_max",
        lambda g: g.max_mem_pct,
        _ABOVE,
        lambda v, lim, lb: f"memory {v:.0f}% > {lim:g}%{_task(lb)}",
        ("mem_usage",),  # mem_limit may be absent (no hard limit): the task's size from [cluster] then
    ),
    _Rule(
        # the median per task: free threads at or below the limit for at least half the window
        GuardCode.POOL,
        "pool_capacity_p50",
        lambda g: g.min_pool_capacity,
        _AT_OR_BELOW,
        lambda v, lim, lb: f"puma pool exhausted: median free threads {v:.1f} <= {lim:g}{_task(lb)}",
        ("pool_capacity",),
    ),
    _Rule(
        GuardCode.BACKLOG,
        "backlog_max",
        lambda g: g.max_backlog,
        _ABOVE,
        lambda v, lim, lb: f"puma backlog {v:.0f} > {lim:g} requests queued{_task(lb)}",
        ("backlog",),
    ),
    _Rule(
        GuardCode.QUEUE_LATENCY,
        "queue_latency_s_max",
        lambda g: g.max_queue_latency_s,
        _ABOVE,
        lambda v, lim, lb: f"queue{_queue(lb)} latency {v:.1f} s > {lim:g} s",
        ("queue_latency_s",),
    ),
    _Rule(
        GuardCode.QUEUE_GROWTH,
        "queue_growth_per_s",
        lambda g: g.max_queue_growth_per_s,
        _ABOVE,
        lambda v, lim, lb: f"queue{_queue(lb)} growing {v:.1f} jobs/s > {lim:g}",
        ("queue_size",),
    ),
)

PERCENT_MEMORY = ("mem_pct_max", "mem_pct")
"""Memory read as a percentage (CloudWatch) instead of usage/limit: the memory guard's inputs then."""


def _usable(v: float | None) -> bool:
    return v is not None and isinstance(v, int | float) and math.isfinite(v)


def metric_guard_breaches(aggregates: dict[str, float | None], guards: Guards) -> list[Breach]:
    """How the server-side figures of one stage break ``guards`` (empty: all hold or unknown).

    Missing figures never fail a stage: :func:`blind_queries` names them instead.
    """
    breaches: list[Breach] = []
    for rule in RULES:
        limit = rule.limit(guards)
        if limit is None:
            continue
        prefix = f"{rule.key}["
        groups = [(k[len(prefix) : -1], v) for k, v in aggregates.items() if k.startswith(prefix) and k.endswith("]")]
        candidates = groups if groups else [("", aggregates.get(rule.key))]
        for label, value in candidates:
            if not _usable(value):
                continue
            assert value is not None
            if rule.breaks(float(value), float(limit)):
                text = rule.text(float(value), float(limit), label)
                breaches.append(Breach(rule.code, rule.key, text, float(value), float(limit), label, STAGE))
    return breaches


def guard_inputs(guards: Guards, configured: Collection[str]) -> dict[str, tuple[str, ...]]:
    """Guard code -> the queries it reads, for every guard with a limit set."""
    out: dict[str, tuple[str, ...]] = {}
    for rule in RULES:
        if rule.limit(guards) is None:
            continue
        inputs = rule.inputs
        if rule.code is GuardCode.MEMORY and any(n in configured for n in PERCENT_MEMORY):
            inputs = tuple(n for n in PERCENT_MEMORY if n in configured)
        out[rule.code] = inputs
    return out


def blind_queries(
    guards: Guards, configured: Collection[str], no_data: Collection[str], pending: Collection[str] = ()
) -> list[str]:
    """The queries a set guard reads that are not configured or returned no data (in order, once each).

    ``pending`` (late CloudWatch queries not in yet) are not blind: the catch-up pass fills them.
    """
    blind: list[str] = []
    for inputs in guard_inputs(guards, configured).values():
        if any(n in pending for n in inputs):
            continue
        for n in inputs:
            if (n not in configured or n in no_data) and n not in blind:
                blind.append(n)
    return blind
