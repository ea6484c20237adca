"""How the Datadog agent's checks report, read right: absent limits, absent empty queues, collapsed tags.

Facts from the integrations' public metadata (``reference-data/datadog-metrics/``):

- ``ecs.fargate.mem.limit`` is absent for a container without a hard limit: memory % is then read
  against the task's size from ``[cluster] mem_mib_per_task`` (said once per run), not blind.
- With open-source Sidekiq, the Redis check's ``redis.key.length`` sends no point for an empty
  queue (Redis deletes empty lists): once the keys are listed (``[metrics] queue_keys``), an absent
  key reads as 0 jobs, not unknown.
- Integration-check metrics (Puma, Redis) carry ``task_arn`` only at orchestrator tag cardinality;
  at the agent's default (``low``) every task's series collapse into one group. The ECS Fargate
  check's own series always carry it, so tasks are counted from the CPU series and fewer per-task
  groups than that is a warning naming the agent setting.

Pure: frames and settings in, frames and sentences out.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from capacity.observe.aggregate import MIB, window_buckets
from capacity.observe.queries import metric_name
from capacity.observe.query_language import parse_query
from capacity.plan.experiment import Experiment

CARDINALITY_SETTING = "DD_CHECKS_TAG_CARDINALITY=orchestrator"
"""The agent sidecar's environment setting that puts ``task_arn`` on check metrics."""

TASK_COUNT_QUERY = "cpu_pct"
"""The ECS Fargate check's per-task CPU: the witness of how many tasks report."""

CHECK_PER_TASK = ("pool_capacity", "max_threads", "backlog")
"""Per-task queries over integration-check metrics (Puma): collapsed at low tag cardinality."""


@dataclass(frozen=True)
class AgentSemantics:
    """What one experiment's queries need beyond the raw points (built once per run)."""

    optional: frozenset[str] = frozenset()
    """Queries that may be absent by design (never waited for, never blind): ``mem_limit``, ``mem_cache``."""
    zero_when_absent: dict[str, tuple[str, ...]] = field(default_factory=dict)
    """Query name -> the groups (``key:queue:NAME``) that read as 0 when they send no point."""
    mem_limit_bytes: float | None = None
    """The task's memory from ``[cluster]``: the limit when the container reports none."""
    said: set[str] = field(default_factory=set)
    """Warnings already given this run: each is said once, at the first stage that shows it."""

    def fill(
        self, frame: pd.DataFrame, start: float, end: float, intervals: dict[str, int], stage: int
    ) -> pd.DataFrame:
        """Zero points for each listed group that sent none in the window (one per rollup bucket)."""
        rows = []
        for name, groups in self.zero_when_absent.items():
            have = set(frame.loc[frame["metric"] == name, "group"]) if not frame.empty else set()
            buckets = window_buckets(start, end, intervals.get(name, 1))
            rows += [(stage, name, g, float(b), 0.0) for g in groups if g not in have for b in buckets]
        if not rows:
            return frame
        zeros = pd.DataFrame(rows, columns=["stage", "metric", "group", "t", "value"])
        both = pd.concat([frame, zeros], ignore_index=True) if not frame.empty else zeros
        return both.sort_values(["metric", "group", "t"], ignore_index=True)

    def answered(self, comp: dict[str, float], have: set[str]) -> dict[str, float]:
        """Completeness without the optional queries that sent nothing (absent by design, not late)."""
        return {n: v for n, v in comp.items() if n in have or n not in self.optional}

    def warnings(self, frame: pd.DataFrame, queries: dict[str, str], *, stage: int = 0) -> list[str]:
        """The limit read from ``[cluster]``, and collapsed per-task groups, as sentences (once a run;
        recovery probes, stage -1, say nothing)."""
        if stage < 0:
            return []
        out = []
        if self.mem_limit_bytes and "mem_usage" in queries and not _has(frame, "mem_limit"):
            out.append(
                f"mem_limit: the app container reports no memory limit (no hard limit set); memory % is of "
                f"the task's {self.mem_limit_bytes / 2**20:.0f} MiB from [cluster] mem_mib_per_task"
            )
        collapsed = collapsed_groups(frame)
        if collapsed:
            out.append(collapsed)
        new = [w for w in out if w not in self.said]
        self.said.update(new)
        return new


def agent_semantics(exp: Experiment, queries: dict[str, str]) -> AgentSemantics:
    """The experiment's :class:`AgentSemantics`: which queries may be absent, which read absent as 0."""
    m = exp.metrics
    zero: dict[str, tuple[str, ...]] = {}
    oss = m.sidekiq == "oss" and metric_name(queries.get("queue_size", "")) == "redis.key.length"
    if oss and m.queue_keys:  # per key when the query groups by key, else its one series
        by_key = "key" in parse_query(queries["queue_size"]).group_by
        zero["queue_size"] = tuple(f"key:{k}" for k in m.queue_keys) if by_key else ("*",)
    return AgentSemantics(
        optional=frozenset({"mem_limit", "mem_cache"} & set(queries)),
        zero_when_absent=zero,
        mem_limit_bytes=exp.cluster.mem_mib_per_task * MIB,
    )


def _has(frame: pd.DataFrame, name: str) -> bool:
    return not frame.empty and bool((frame["metric"] == name).any())


def tasks_from_cpu(frame: pd.DataFrame | None) -> int | None:
    """Tasks reporting: distinct groups of the per-task CPU series (None without CPU points)."""
    if frame is None or frame.empty or "metric" not in frame.columns:
        return None
    groups = frame.loc[frame["metric"] == TASK_COUNT_QUERY, "group"]
    return int(groups.nunique()) if len(groups) else None


def collapsed_groups(frame: pd.DataFrame | None) -> str | None:
    """A warning when per-task check queries show fewer groups than tasks report CPU (else None)."""
    tasks = tasks_from_cpu(frame)
    if frame is None or tasks is None or tasks < 2:
        return None
    short = {}
    for name in CHECK_PER_TASK:
        n = int(frame.loc[frame["metric"] == name, "group"].nunique())
        if 0 < n < tasks:
            short[name] = n
    if not short:
        return None
    shown = ", ".join(f"{k} {v}" for k, v in short.items())
    return (
        f"per-task groups collapsed: {tasks} tasks report CPU but the Puma check's queries show fewer "
        f"groups ({shown}): its metrics carry no task_arn at the agent's default (low) tag cardinality; "
        f"set {CARDINALITY_SETTING} on the agent sidecar. Until then the pool and backlog guards read "
        f"one series for all tasks, and the task count comes from the CPU series"
    )
