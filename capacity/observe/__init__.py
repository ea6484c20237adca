"""observe: server-side metrics (ECS, Puma, Sidekiq, APM) from Datadog for each stage's window."""

from capacity.observe.backfill import BackfillReport, backfill_run
from capacity.observe.guards import metric_guard_reasons
from capacity.observe.queries import apm_queries, cloudwatch_queries, resolve_queries
from capacity.observe.source import MetricsSource, StageMetrics, StageWindow, build_source

__all__ = [
    "BackfillReport",
    "MetricsSource",
    "StageMetrics",
    "StageWindow",
    "apm_queries",
    "backfill_run",
    "build_source",
    "cloudwatch_queries",
    "metric_guard_reasons",
    "resolve_queries",
]
