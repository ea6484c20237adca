"""Which resource limited a failing stage, from its server metrics: the bottleneck named, with evidence.

A search says *where* the target saturates; this says *what* limits it. For each stage that did not
pass (failed a guard, or was invalid because of the load generator) the first rule below whose
evidence is in the stage's metrics names the resource. The order goes from the deepest resource
out, because a limit further in shows up as a symptom further out: requests queued on a row lock
hold their ActiveRecord connection, threads waiting for a connection hold their Puma thread, so the
database comes before the pool and the pool before the threads.

=================  ==========================================================================
``generator``      the stage was invalid: the load generator ran out of CPU (never the target)
``database``       queries waiting on locks (``db_lock_waits``, ``db_locks_waiting``) or
                   connections near ``max_connections`` (``db_connections_pct_max``)
``db_pool``        threads waiting to check out an ActiveRecord connection (``db_pool_waiting``)
``cpu``            the app tasks' CPU at its limit (``cpu_pct``, or the CPU guard broke)
``puma_threads``   Puma's pool exhausted (``pool_capacity`` 0, ``pool_busy_pct``) or a backlog
``sidekiq``        the Sidekiq queue growing (``queue_growth_per_s``) or its latency guard broke
``unknown``        none of these in the metrics (a blind query is no evidence either way)
=================  ==========================================================================

The keys are the per-stage aggregates of ``[metrics.queries]`` (their ``extra`` names for the database
and the pool, as ``experiments/sandbox-rails.toml`` sets them). Pure: stage results in, records out.
"""

from __future__ import annotations

from collections.abc import Callable

from capacity.core.models import Bottleneck, BottleneckResource, StageResult
from capacity.core.outcomes import Cause

LOCK_WAITS_MIN = 0.5
"""Mean queries waiting on a lock over the stage: at or above it, check-ins queue on row locks."""
CONNECTIONS_NEAR_MAX = 0.9
"""Share of ``max_connections`` in use at the stage's peak that counts as near the limit."""
POOL_WAITING_MIN = 0.5
"""Mean threads (per task) waiting for an ActiveRecord connection."""
CPU_PCT_MIN = 85.0
"""Task CPU % (of its vCPUs) at which CPU is the limit."""
PUMA_BUSY_PCT_MIN = 90.0
"""Busy share of Puma's threads at which the pool is exhausted."""
QUEUE_GROWTH_MIN = 0.5
"""Jobs per second the Sidekiq queue grows by at which Sidekiq is behind."""

Metrics = dict[str, float | None]


def _num(m: Metrics, key: str) -> float | None:
    v = m.get(key)
    return float(v) if isinstance(v, int | float) else None


def _fig(v: float) -> str:
    return f"{v:.0f}" if abs(v) >= 100 else f"{v:.3g}"


def _database(m: Metrics, codes: set[str]) -> list[str]:
    out = []
    waits, waits_max = _num(m, "db_lock_waits"), _num(m, "db_lock_waits_max")
    if waits is not None and waits >= LOCK_WAITS_MIN:
        peak = f" (max {_fig(waits_max)})" if waits_max is not None else ""
        out.append(f"{_fig(waits)} queries waiting on a lock on average{peak}")
    locks = _num(m, "db_locks_waiting")
    if locks is not None and locks >= LOCK_WAITS_MIN and not out:
        out.append(f"{_fig(locks)} locks not granted on average")
    conns = _num(m, "db_connections_pct_max")
    if conns is not None and conns >= CONNECTIONS_NEAR_MAX:
        out.append(f"connections at {conns:.0%} of max_connections")
    return out


def _db_pool(m: Metrics, codes: set[str]) -> list[str]:
    waiting = _num(m, "db_pool_waiting")
    if waiting is None or waiting < POOL_WAITING_MIN:
        return []
    peak, busy, size = _num(m, "db_pool_waiting_max"), _num(m, "db_pool_busy"), _num(m, "db_pool_size")
    text = f"{_fig(waiting)} threads per task waiting for an ActiveRecord connection on average"
    if peak is not None:
        text += f" (max {_fig(peak)})"
    if busy is not None and size:
        text += f", {_fig(busy)} of {_fig(size)} connections busy"
    return [text]


def _cpu(m: Metrics, codes: set[str]) -> list[str]:
    cpu = _num(m, "cpu_pct")
    if cpu is not None and cpu >= CPU_PCT_MIN:
        return [f"app task CPU {_fig(cpu)}% on average"]
    return ["the CPU guard broke"] if "cpu" in codes else []


def _puma(m: Metrics, codes: set[str]) -> list[str]:
    out = []
    busy, free = _num(m, "pool_busy_pct"), _num(m, "pool_capacity_p50")
    if busy is not None and busy >= PUMA_BUSY_PCT_MIN:
        out.append(f"Puma threads {_fig(busy)}% busy")
    elif free is not None and free <= 0:
        out.append("no free Puma thread for half the stage")
    backlog = _num(m, "backlog_max")
    if backlog is not None and backlog > 0:
        out.append(f"backlog up to {_fig(backlog)} requests")
    if not out and codes & {"pool", "backlog"}:
        out.append("the Puma pool guard broke")
    return out


def _sidekiq(m: Metrics, codes: set[str]) -> list[str]:
    growth = _num(m, "queue_growth_per_s")
    if growth is not None and growth >= QUEUE_GROWTH_MIN:
        return [f"Sidekiq queue growing {_fig(growth)} jobs/s"]
    return ["the Sidekiq queue guard broke"] if codes & {"queue_growth", "queue_latency"} else []


RULES: tuple[tuple[BottleneckResource, Callable[[Metrics, set[str]], list[str]]], ...] = (
    ("database", _database),
    ("db_pool", _db_pool),
    ("cpu", _cpu),
    ("puma_threads", _puma),
    ("sidekiq", _sidekiq),
)


def stage_bottleneck(stage: StageResult) -> Bottleneck:
    """The limiting resource of one stage, with its evidence and what else was near a limit."""
    if stage.verdict.cause is Cause.GENERATOR:
        cpu = stage.generator_cpu_pct
        figure = f" (its CPU {_fig(cpu)}%)" if cpu is not None else ""
        return Bottleneck(resource="generator", evidence=f"the load generator was the limit{figure}", stage=stage.index)
    codes = {b.code for b in stage.breaches}
    found = [(name, ev) for name, rule in RULES if (ev := rule(stage.metrics, codes))]
    if not found:
        blind = f"; no data for {', '.join(stage.blind)}" if stage.blind else ""
        return Bottleneck(
            resource="unknown", evidence=f"no resource at a limit in the metrics{blind}", stage=stage.index
        )
    (name, evidence), rest = found[0], found[1:]
    also = [f"{n}: {'; '.join(ev)}" for n, ev in rest]
    return Bottleneck(resource=name, evidence="; ".join(evidence), stage=stage.index, also=also)


def name_bottlenecks(stages: list[StageResult]) -> list[Bottleneck]:
    """One record per stage that did not pass (failed or invalid: generator), in stage order."""
    judged = ("fail", "invalid: generator")
    return [stage_bottleneck(s) for s in sorted(stages, key=lambda s: s.index) if s.verdict in judged]


def bottleneck_text(b: Bottleneck | None) -> str:
    """One line for people: ``database (stage 3): 2.1 queries waiting on a lock ...``."""
    if b is None:
        return "not named: no stage failed"
    line = f"{b.resource} (stage {b.stage}): {b.evidence}"
    return line + (f"; also {', '.join(b.also)}" if b.also else "")
