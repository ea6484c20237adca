"""The metrics-source interface the search runner calls after each stage, and its factory.

A source turns a stage's measured window into a tidy table (stage, metric, group, t, value) plus
per-stage aggregates and completeness. Datadog is the one real implementation; the sandbox serves
the same Datadog wire format, so the default run exercises the staging code path.
"""

from __future__ import annotations

import os

from capacity.core.errors import CapacityError, MetricsAuthError
from capacity.core.urls import check_http_url
from capacity.observe.agent_checks import agent_semantics
from capacity.observe.datadog import DatadogSource
from capacity.observe.datadog_settings import DatadogEndpoint, PollSettings, QueryPlan
from capacity.observe.queries import api_host, cpu_divisors, query_rollups, resolve_queries
from capacity.observe.stage_metrics import MetricsSource, StageMetrics, StageWindow
from capacity.plan.experiment import Experiment

__all__ = ["MetricsSource", "StageMetrics", "StageWindow", "build_source", "resolve_host"]


def _check_url(url: str, where: str) -> str:
    check_http_url(url, where, error=CapacityError)
    return url.rstrip("/")


def resolve_host(exp: Experiment, url_override: str | None = None) -> str:
    """Base URL: override > ``CAPACITY_DATADOG_URL`` > ``metrics.url`` > ``DD_SITE`` / ``metrics.site``."""
    if url_override:
        return _check_url(url_override, "metrics URL")
    env_url = os.environ.get("CAPACITY_DATADOG_URL")
    if env_url:
        return _check_url(env_url, "CAPACITY_DATADOG_URL")
    if exp.metrics.url:
        return _check_url(exp.metrics.url, "metrics.url")
    return api_host(os.environ.get("DD_SITE") or exp.metrics.site)


def build_source(
    exp: Experiment,
    *,
    url_override: str | None = None,
    api_key: str | None = None,
    app_key: str | None = None,
    events: bool | None = None,
) -> MetricsSource | None:
    """The experiment's metrics source, or None when ``metrics.source == "none"``.

    Keys come from the arguments (the sandbox's dummy keys) or ``DD_API_KEY``/``DD_APP_KEY``;
    a missing key is a one-line error naming the variable, before any load is sent.
    ``events`` overrides ``metrics.events`` (the nightly job posts its verdict regardless).
    """
    if exp.metrics.source == "none":
        return None
    host = resolve_host(exp, url_override)
    api = api_key or os.environ.get("DD_API_KEY", "")
    app = app_key or os.environ.get("DD_APP_KEY", "")
    for value, var in ((api, "DD_API_KEY"), (app, "DD_APP_KEY")):
        if not value:
            raise MetricsAuthError(
                f"{var} is not set: metrics.source = 'datadog' needs DD_API_KEY and DD_APP_KEY in the "
                "environment (or run with --metrics none)"
            )
    m = exp.metrics
    queries = resolve_queries(m)
    keys = ("DD_API_KEY", "DD_APP_KEY") if api_key is None else ("the metrics API key", "the metrics app key")
    plan = QueryPlan(
        queries,
        rollup_s=m.rollup_seconds,
        rollups=query_rollups(m),
        divisors=cpu_divisors(queries, exp.cluster),
        max_threads=float(exp.cluster.puma_threads) if exp.cluster.puma_threads else None,
        semantics=agent_semantics(exp, queries),
        late_prefixes=tuple(m.late_prefixes),
    )
    return DatadogSource(
        DatadogEndpoint(host, api, app, key_names=keys),
        plan,
        poll=PollSettings(deadline_s=m.poll_deadline_s, interval_s=m.poll_interval_s),
        events=m.events if events is None else events,
    )
