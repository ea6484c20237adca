"""The metrics-source interface the search runner calls after each stage, and its factory.

A source turns a stage's measured window into a tidy table (stage, metric, group, t, value) plus
per-stage aggregates and completeness. Datadog is the one real implementation; the sandbox serves
the same Datadog wire format, so the default run exercises the staging code path.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol
from urllib.parse import urlsplit

import pandas as pd

from capacity.errors import CapacityError, MetricsAuthError
from capacity.plan.experiment import Experiment


@dataclass(frozen=True)
class StageWindow:
    """The measured part of one stage (warm-up excluded), tz-aware UTC."""

    stage: int
    start: datetime
    end: datetime

    @property
    def start_s(self) -> float:
        return _utc(self.start).timestamp()

    @property
    def end_s(self) -> float:
        return _utc(self.end).timestamp()


def _utc(d: datetime) -> datetime:
    return d.replace(tzinfo=UTC) if d.tzinfo is None else d


@dataclass
class StageMetrics:
    frame: pd.DataFrame
    """Tidy points inside the window: stage, metric, group, t (epoch s), value (base units)."""
    aggregates: dict[str, float | None]
    completeness: dict[str, float]
    """Query name -> share of the window's expected rollup intervals present (0..1)."""
    missing: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    calls: int = 0
    """HTTP calls made for this stage (polls and retries included)."""
    seconds_to_complete: float | None = None
    """Seconds from the window's end until every waited-for metric was complete (None: never)."""


class MetricsSource(Protocol):
    def preflight(self) -> None: ...

    def fetch_stage(self, window: StageWindow, *, wait: bool = True) -> StageMetrics: ...

    def post_event(self, title: str, text: str, tags: list[str]) -> str | None: ...

    def close(self) -> None: ...


def _check_url(url: str, where: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise CapacityError(f"{where}: {url!r} is not an http(s) URL")
    return url.rstrip("/")


def resolve_host(exp: Experiment, url_override: str | None = None) -> str:
    """Base URL: override > ``CAPACITY_DATADOG_URL`` > ``metrics.url`` > ``DD_SITE`` / ``metrics.site``."""
    from capacity.observe.queries import api_host

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
    from capacity.observe.datadog import DatadogSource
    from capacity.observe.queries import resolve_queries

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
    return DatadogSource(
        host=host,
        api_key=api,
        app_key=app,
        queries=resolve_queries(m),
        rollup_s=m.rollup_seconds,
        poll_deadline_s=m.poll_deadline_s,
        poll_interval_s=m.poll_interval_s,
        events=m.events if events is None else events,
        max_threads=float(exp.cluster.puma_threads) if exp.cluster.puma_threads else None,
        key_names=("DD_API_KEY", "DD_APP_KEY") if api_key is None else ("the metrics API key", "the metrics app key"),
        late_prefixes=tuple(m.late_prefixes),
    )
