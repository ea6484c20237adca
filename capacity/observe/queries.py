"""Datadog query templates -> concrete queries: scope expansion, rollups, presets.

Tag names and scopes differ between setups (``ecs_service`` vs ``ecs_service_name``, CloudWatch's
``clustername``), so every query is a template over ``[metrics]`` settings rather than a constant.
"""

from __future__ import annotations

import re
from string import Template
from typing import Any

from capacity.ddquery import query_head
from capacity.errors import CapacityError
from capacity.plan.experiment import MetricQueries, MetricsSettings

STANDARD_NAMES: tuple[str, ...] = (
    "cpu_pct",
    "mem_usage",
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

_SITE_RE = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+$")


def scope(*terms: str) -> str:
    """Join non-empty tag filters with commas; ``*`` (everything) when none is left."""
    parts = [p.strip() for t in terms for p in t.split(",") if p.strip()]
    return ",".join(parts) if parts else "*"


def _service_scope(
    settings: MetricsSettings, service: str, *, cluster_tag: str | None = None, service_tag: str | None = None
) -> str:
    """The tag filter for one ECS service; tag names default to the settings' (the agent's)."""
    return scope(
        f"{cluster_tag or settings.cluster_tag}:{settings.cluster}" if settings.cluster else "",
        f"{service_tag or settings.service_tag}:{service}" if service else "",
        settings.extra_scope,
    )


def placeholders(settings: MetricsSettings) -> dict[str, str]:
    """Values for ``$app_scope``, ``$sidekiq_scope``, ``$queue_scope`` and the raw names."""
    sidekiq = _service_scope(settings, settings.sidekiq_service)
    return {
        "app_scope": _service_scope(settings, settings.app_service),
        "sidekiq_scope": sidekiq,
        "queue_scope": str(settings.queue_scope or sidekiq),
        "cluster": settings.cluster,
        "app_service": settings.app_service,
        "sidekiq_service": settings.sidekiq_service,
        "extra_scope": settings.extra_scope,
    }


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


def metric_name(query: str) -> str | None:
    head = query_head(query)
    return head.metric if head else None


def with_rollup(query: str, seconds: int) -> str:
    """Append ``.rollup(<agg>, seconds)`` unless the query sets its own rollup.

    A fixed rollup gives a predictable interval, so completeness (share of expected intervals
    present) means the same thing for every stage. The time aggregation follows the space
    aggregator (``max:`` keeps maxima, ``sum:`` keeps counts per interval).
    """
    if ".rollup(" in query:
        return query
    return f"{query.rstrip()}.rollup({query_aggregator(query)}, {int(seconds)})"


def is_late(query: str, prefixes: tuple[str, ...] = LATE_PREFIXES) -> bool:
    name = metric_name(query) or ""
    return name.startswith(tuple(prefixes))


def cloudwatch_queries(
    settings: MetricsSettings,
    *,
    cluster_tag: str = "clustername",
    service_tag: str = "servicename",
) -> MetricQueries:
    """ECS via the CloudWatch integration (``aws.ecs.service.*``): service-level, 10-20 min late.

    CloudWatch reports per service, not per task, and as utilisation % rather than usage/limit,
    so CPU and memory come as percentages and the agent-only queries (Puma, per-task memory)
    stay as configured. Tags follow the AWS integration (``clustername``/``servicename``).
    """

    app, sidekiq = (
        _service_scope(settings, s, cluster_tag=cluster_tag, service_tag=service_tag)
        for s in (settings.app_service, settings.sidekiq_service)
    )
    current = settings.queries
    return current.model_copy(
        update={
            "cpu_pct": f"avg:aws.ecs.service.cpuutilization{{{app}}}",
            "mem_usage": None,
            "mem_limit": None,
            "sidekiq_cpu_pct": f"avg:aws.ecs.service.cpuutilization{{{sidekiq}}}",
            "extra": {
                **current.extra,
                "cpu_pct_max": f"max:aws.ecs.service.cpuutilization.maximum{{{app}}}",
                "mem_pct": f"avg:aws.ecs.service.memory_utilization{{{app}}}",
                "mem_pct_max": f"max:aws.ecs.service.memory_utilization.maximum{{{app}}}",
                "running_tasks": f"avg:aws.ecs.service.running{{{app}}}",
            },
        }
    )


def apm_queries(settings: MetricsSettings, *, framework: str = "rack") -> dict[str, str]:
    """APM request metrics per task (``trace.<framework>.request.*``), for ``metrics.queries.extra``."""
    app = "$app_scope"
    return {
        "apm_hits": f"sum:trace.{framework}.request.hits{{{app}}} by {{task_arn}}.as_count()",
        "apm_errors": f"sum:trace.{framework}.request.errors{{{app}}} by {{task_arn}}.as_count()",
        "apm_latency_s": f"avg:trace.{framework}.request.duration{{{app}}} by {{task_arn}}",
    }


def resolve_queries(settings: MetricsSettings) -> dict[str, str]:
    """Name -> concrete query (placeholders expanded, rollup appended), skipping ``None`` ones.

    A ``preset = "cloudwatch"`` setting swaps in
    :func:`cloudwatch_queries`.
    """
    queries = settings.queries
    if settings.preset == "cloudwatch":
        queries = cloudwatch_queries(settings)
    values = placeholders(settings)
    raw: dict[str, Any] = {n: getattr(queries, n, None) for n in (*STANDARD_NAMES, *OPTIONAL_NAMES)}
    raw.update(queries.extra)
    out: dict[str, str] = {}
    for name, template in raw.items():
        if not template:
            continue
        text = expand(str(template), values, name=name)
        if metric_name(text) is None:
            raise CapacityError(
                f"metrics.queries.{name}: {text!r} is not a Datadog query like 'avg:metric{{scope}} by {{tag}}'"
            )
        out[name] = with_rollup(text, settings.rollup_seconds)
    return out


def api_host(site: str) -> str:
    """``https://api.<site>`` for a Datadog site such as ``datadoghq.com`` or ``ddog-gov.com``."""
    s = site.strip().lower()
    if s.startswith("app."):
        s = s[4:]
    if not _SITE_RE.match(s):
        raise CapacityError(f"metrics.site / DD_SITE: {site!r} is not a Datadog site like 'ddog-gov.com'")
    return f"https://api.{s}"
