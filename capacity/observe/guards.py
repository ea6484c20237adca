"""Server-side guards: CPU, memory, Puma pool, backlog and Sidekiq queues against ``[guards]``.

Pure: stage aggregates in, breach records out, each with the code of the rule that made it (never
read back from its text). A breach names the figure and, when the aggregates carry per-group keys
(``queue_growth_per_s[default]``), the queue or task as its ``scope``, because "a queue is growing"
is not actionable and "queue 'mailers' growing 3.2 jobs/s" is.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from capacity.breach import STAGE, Breach
from capacity.plan.experiment import Guards


@dataclass(frozen=True)
class _Rule:
    code: str
    key: str
    limit: Callable[[Guards], float | None]
    above: bool  # breach when value > limit (else when value < limit)
    text: Callable[[float, float, str], str]


def _task(label: str) -> str:
    return f" (task {label})" if label else ""


def _queue(label: str) -> str:
    return f" '{label}'" if label else ""


RULES: tuple[_Rule, ...] = (
    _Rule("cpu", "cpu_pct", lambda g: g.max_cpu_pct, True, lambda v, lim, lb: f"cpu {v:.0f}% > {lim:g}%{_task(lb)}"),
    _Rule(
        "sidekiq_cpu",
        "sidekiq_cpu_pct",
        lambda g: g.max_cpu_pct,
        True,
        lambda v, lim, lb: f"sidekiq cpu {v:.0f}% > {lim:g}%{_task(lb)}",
    ),
    _Rule(
        "memory",
        "mem_pct_max",
        lambda g: g.max_mem_pct,
        True,
        lambda v, lim, lb: f"memory {v:.0f}% > {lim:g}%{_task(lb)}",
    ),
    _Rule(
        "pool",
        "pool_capacity",
        lambda g: g.min_pool_capacity,
        False,
        lambda v, lim, lb: f"puma pool exhausted: capacity {v:.1f} < {lim:g}{_task(lb)}",
    ),
    _Rule(
        "backlog",
        "backlog_max",
        lambda g: g.max_backlog,
        True,
        lambda v, lim, lb: f"puma backlog {v:.0f} > {lim:g}{_task(lb)}",
    ),
    _Rule(
        "queue_latency",
        "queue_latency_s_max",
        lambda g: g.max_queue_latency_s,
        True,
        lambda v, lim, lb: f"queue{_queue(lb)} latency {v:.1f} s > {lim:g} s",
    ),
    _Rule(
        "queue_growth",
        "queue_growth_per_s",
        lambda g: g.max_queue_growth_per_s,
        True,
        lambda v, lim, lb: f"queue{_queue(lb)} growing {v:.1f} jobs/s > {lim:g}",
    ),
)


def _usable(v: float | None) -> bool:
    return v is not None and isinstance(v, int | float) and math.isfinite(v)


def metric_guard_breaches(aggregates: dict[str, float | None], guards: Guards) -> list[Breach]:
    """How the server-side figures of one stage break ``guards`` (empty: all hold or unknown).

    Missing figures never fail a stage: they are reported as missing by the caller instead.
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
            if (value > limit) if rule.above else (value < limit):
                text = rule.text(float(value), float(limit), label)
                breaches.append(Breach(rule.code, rule.key, text, float(value), float(limit), label, STAGE))
    return breaches
