"""Query sets beside the default (Datadog agent on Fargate, Sidekiq Enterprise): CloudWatch, open-source
Sidekiq, APM.

Each returns a changed copy of ``[metrics.queries]``; a query the user set in the file is never
replaced, so a preset only fills in what the experiment left at its default.
"""

from __future__ import annotations

from capacity.observe.scopes import service_scope
from capacity.plan.experiment import MetricQueries, MetricsSettings

REDIS_QUEUE_KEY = "queue:*"
"""Sidekiq keeps each queue in the Redis list ``queue:<name>``; the Redis check reports the keys it lists."""

SIDEKIQ_PER_QUEUE_SIZE = "max:sidekiq.queue.size{$queue_scope} by {queue}"
"""Per-queue size: a *custom* metric (Sidekiq's integration documents only totals such as
``sidekiq.enqueued``); teams publish it from ``Sidekiq::Queue#size``. Set ``queue_size`` to it for
per-queue growth guards; ``capacity metrics check`` marks it custom."""


def _defaults_only(current: MetricQueries, changes: dict[str, str | None]) -> dict[str, str | None]:
    """The changes for fields still holding their default query (a query set in the file wins)."""
    fields = MetricQueries.model_fields
    return {k: v for k, v in changes.items() if getattr(current, k) == fields[k].default}


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
    ``CPUUtilization`` is already the task-level figure (CPU used by the tasks / CPU reserved for
    them), the same definition as the Fargate preset's normalised ``cpu_pct``.
    """
    app, sidekiq = (
        service_scope(settings, s, cluster_tag=cluster_tag, service_tag=service_tag)
        for s in (settings.app_service, settings.sidekiq_service)
    )
    current = settings.queries
    return current.model_copy(
        update={
            "cpu_pct": f"avg:aws.ecs.service.cpuutilization{{{app}}}",
            "cpu_container_pct": None,
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


def oss_sidekiq_queries(current: MetricQueries, keys: list[str] | None = None) -> MetricQueries:
    """Open-source Sidekiq: queue length from Datadog's Redis check, the oldest job's age where published.

    OSS Sidekiq emits no ``sidekiq.*`` metrics. The Redis check reports ``redis.key.length`` for
    the keys it is told to watch (``keys: ["queue:*"]``), tagged ``key:queue:<name>``. The oldest
    job's age is ``Sidekiq::Queue#latency``: teams publish it themselves, conventionally as
    ``sidekiq.queue.latency`` tagged ``queue`` (kept as the default; no data makes its guard blind).
    Jobs processed has no OSS source: sizing falls back to the endpoints' ``enqueues_jobs``. With
    ``keys`` (``[metrics] queue_keys``) the query names them, and a listed key with no point reads as
    0 (``agent_checks``): Redis deletes an empty list, so the check has nothing to report.
    """
    changes = _defaults_only(
        current,
        {
            "queue_size": f"max:redis.key.length{{{_key_scope(keys)}}} by {{key}}",
            "jobs_processed": None,
        },
    )
    return current.model_copy(update=changes)


def _key_scope(keys: list[str] | None) -> str:
    """``$queue_scope`` and the Redis keys: ``key:queue:*``, or the listed keys (``key:a OR key:b`` is not
    a scope Datadog's v1 API parses, so several keys read ``queue:*`` and the listed ones are zero-filled)."""
    one = keys[0] if keys and len(keys) == 1 else REDIS_QUEUE_KEY
    return f"$queue_scope,key:{one}"


def apm_queries(settings: MetricsSettings, *, framework: str = "rack") -> dict[str, str]:
    """APM request metrics (``trace.<framework>.request.*``) scoped by ``service``/``env``, for the queries.

    Trace metrics carry the APM service and env, not ECS task tags: a ``by {task_arn}`` query
    over them returns nothing.
    """
    app = "$apm_scope"
    return {
        "apm_hits": f"sum:trace.{framework}.request.hits{{{app}}}.as_count()",
        "apm_errors": f"sum:trace.{framework}.request.errors{{{app}}}.as_count()",
        "apm_latency_s": f"avg:trace.{framework}.request.duration{{{app}}}",
    }
