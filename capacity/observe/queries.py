"""Datadog query templates -> concrete queries: placeholders, per-metric rollups, presets, normalisation.

Every query is a template over ``[metrics]`` settings (tag names differ between setups). Each
query is rolled up at ``max(rollup_seconds, its metric's emission interval)``: a 30-s metric read
in 20-s buckets leaves every other bucket empty, so its completeness could never reach 1 and each
stage would wait out the poll deadline (docs/design.md, section 5).
"""

from __future__ import annotations

import re
from string import Template
from typing import Any

from capacity.core.errors import CapacityError
from capacity.observe.presets import cloudwatch_queries, oss_sidekiq_queries
from capacity.observe.query_language import ParsedQuery, QueryError, parse_query, query_head
from capacity.observe.scopes import placeholders
from capacity.plan.experiment import Cluster, MetricsSettings

STANDARD_NAMES: tuple[str, ...] = (
    "cpu_pct",
    "cpu_container_pct",
    "mem_usage",
    "mem_cache",
    "mem_limit",
    "pool_capacity",
    "max_threads",
    "backlog",
    "queue_size",
    "queue_latency_s",
    "jobs_processed",
    "sidekiq_cpu_pct",
)
"""The named query fields of ``MetricQueries`` with their own aggregation (``extra`` holds the rest)."""

OPTIONAL_NAMES: tuple[str, ...] = ("mem_pct", "running_tasks", "apm_hits", "apm_errors", "apm_latency_s")
"""Named ``MetricQueries`` fields aggregated like ``extra`` queries (mean, and max where it matters)."""

LATE_PREFIXES: tuple[str, ...] = ("aws.",)
"""Metric name prefixes that arrive minutes late (CloudWatch): never waited for after a stage."""

DEFAULT_INTERVALS: dict[str, int] = {
    "ecs.fargate.": 20,
    "puma.": 15,
    "redis.": 15,
    "trace.": 10,
    "sidekiq.": 30,
    "aws.": 60,
}
"""Emission interval (s) by metric-name prefix. The ECS Fargate check runs every 20 s by default, other
agent checks (Puma, Redis) every 15 s (the agent's default ``min_collection_interval``); APM trace
metrics come in 10-s buckets; Sidekiq
Enterprise's metrics every 30 s; CloudWatch in 1-min periods. Others: ``rollup_seconds``."""

FARGATE_CPU = "ecs.fargate.cpu.percent"
"""Per-container CPU with 100 = one vCPU: the one metric divided by the task's vCPUs."""

_SITE_RE = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+$")


def expand(template: str, values: dict[str, str], *, name: str = "query") -> str:
    """Substitute ``$placeholders``; an unknown one is a user error naming the query."""
    try:
        return Template(template).substitute(values)
    except (KeyError, ValueError) as exc:
        raise CapacityError(
            f"metrics.queries.{name}: unknown placeholder {exc} in {template!r} "
            f"(known: {', '.join('$' + k for k in sorted(values))})"
        ) from None


def query_aggregator(query: str) -> str:
    head = query_head(query)
    return head.space_agg if head else "avg"


def _parsed(query: str) -> ParsedQuery | None:
    """The parser's reading of a query; None for text it rejects (the source reports those when queried)."""
    try:
        return parse_query(query)
    except QueryError:
        return None


def metric_name(query: str) -> str | None:
    head = query_head(query)
    return head.metric if head else None


def time_aggregator(query: str) -> str:
    """How points within one rollup bucket combine: counts add up, ``max:``/``min:`` keep their extreme,
    every other gauge is averaged (``sum:`` is a sum *across* series, e.g. a task's containers, not in time)."""
    parsed = _parsed(query)
    if parsed is not None and "as_count" in parsed.functions:
        return "sum"
    agg = query_aggregator(query)
    return agg if agg in ("max", "min") else "avg"


def with_rollup(query: str, seconds: int) -> str:
    """Append ``.rollup(<agg>, seconds)`` unless the query sets its own rollup.

    A fixed rollup gives a predictable interval, so completeness (share of expected intervals
    present) means the same thing for every stage.
    """
    parsed = _parsed(query)
    if parsed is None or "rollup" in parsed.functions:  # text the parser rejects is left as written
        return query
    return f"{query.rstrip()}.rollup({time_aggregator(query)}, {int(seconds)})"


def is_late(query: str, prefixes: tuple[str, ...] = LATE_PREFIXES) -> bool:
    name = metric_name(query) or ""
    return name.startswith(tuple(prefixes))


def emission_interval(settings: MetricsSettings, name: str, metric: str) -> int:
    """Seconds between a metric's points: the query's name in ``intervals``, then the longest matching
    metric prefix there, then its ``"*"``, then :data:`DEFAULT_INTERVALS`, then ``rollup_seconds``."""
    own = settings.intervals
    if name in own:
        return own[name]
    for table in (own, DEFAULT_INTERVALS):
        hits = [p for p in table if p != "*" and metric.startswith(p)]
        if hits:
            return table[max(hits, key=len)]
        if table is own and "*" in own:
            return own["*"]
    return settings.rollup_seconds


def _templates(settings: MetricsSettings) -> dict[str, Any]:
    queries = settings.queries
    if settings.sidekiq == "oss":
        queries = oss_sidekiq_queries(queries, settings.queue_keys)
    if settings.preset == "cloudwatch":
        queries = cloudwatch_queries(settings.model_copy(update={"queries": queries}))
    raw: dict[str, Any] = {n: getattr(queries, n, None) for n in (*STANDARD_NAMES, *OPTIONAL_NAMES)}
    raw.update(queries.extra)
    return raw


def _expanded(settings: MetricsSettings) -> dict[str, str]:
    values = placeholders(settings)
    out: dict[str, str] = {}
    for name, template in _templates(settings).items():
        if not template:
            continue
        text = expand(str(template), values, name=name)
        if metric_name(text) is None:
            raise CapacityError(
                f"metrics.queries.{name}: {text!r} is not a Datadog query like 'avg:metric{{scope}} by {{tag}}'"
            )
        out[name] = text
    return out


def query_rollups(settings: MetricsSettings) -> dict[str, int]:
    """Name -> the rollup (s) its query is read at: ``max(rollup_seconds, emission interval)``."""
    return {
        name: max(settings.rollup_seconds, emission_interval(settings, name, metric_name(text) or ""))
        for name, text in _expanded(settings).items()
    }


def resolve_queries(settings: MetricsSettings) -> dict[str, str]:
    """Name -> concrete query (placeholders expanded, rollup appended), skipping ``None`` ones.

    ``preset = "cloudwatch"`` swaps in :func:`~capacity.observe.presets.cloudwatch_queries` and
    ``sidekiq = "oss"`` :func:`~capacity.observe.presets.oss_sidekiq_queries`.
    """
    rollups = query_rollups(settings)
    return {name: with_rollup(text, rollups[name]) for name, text in _expanded(settings).items()}


def cpu_divisors(queries: dict[str, str], cluster: Cluster) -> dict[str, float]:
    """Name -> the task's vCPUs, for the CPU queries summing Fargate's per-container percent by task.

    Dividing turns "percent of one vCPU" into "percent of the task's CPU", the figure ECS service
    autoscaling (and CloudWatch's ``CPUUtilization``) uses; ``cpu_container_pct`` stays raw.
    """
    sizes = {"cpu_pct": cluster.app_vcpus, "sidekiq_cpu_pct": cluster.sidekiq_vcpus}
    return {n: v for n, v in sizes.items() if n in queries and metric_name(queries[n]) == FARGATE_CPU}


def api_host(site: str) -> str:
    """``https://api.<site>`` for a Datadog site such as ``datadoghq.com`` or ``ddog-gov.com``."""
    s = site.strip().lower()
    if s.startswith("app."):
        s = s[4:]
    if not _SITE_RE.match(s):
        raise CapacityError(f"metrics.site / DD_SITE: {site!r} is not a Datadog site like 'ddog-gov.com'")
    return f"https://api.{s}"
