"""observe: server-side metrics (ECS, Puma, Sidekiq, APM) from Datadog for each stage's window."""

from capacity.observe.presets import apm_queries, cloudwatch_queries, oss_sidekiq_queries
from capacity.observe.queries import resolve_queries
from capacity.observe.refetch import Refetch, refetch_incomplete
from capacity.observe.source import MetricsSource, StageMetrics, StageWindow, build_source

__all__ = [
    "MetricsSource",
    "Refetch",
    "StageMetrics",
    "StageWindow",
    "apm_queries",
    "build_source",
    "cloudwatch_queries",
    "oss_sidekiq_queries",
    "refetch_incomplete",
    "resolve_queries",
]
