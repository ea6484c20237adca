"""What a metrics source answers for one stage window, and the interface every source implements.

Its own module so the sources (``datadog.py``) and the factory that builds them (``source.py``) both
import it without importing each other.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

import pandas as pd


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
    pending: list[str] = field(default_factory=list)
    """Late (CloudWatch) queries with no data yet: not blind, the catch-up pass fills them."""
    calls: int = 0
    """HTTP calls made for this stage (polls and retries included)."""
    seconds_to_complete: float | None = None
    """Seconds from the window's end until every waited-for metric was complete (None: never)."""


class MetricsSource(Protocol):
    def preflight(self) -> None: ...

    def fetch_stage(self, window: StageWindow, *, wait: bool = True) -> StageMetrics: ...

    def empty_queries(self, *, wait_s: float = 0.0) -> list[str]: ...

    def post_event(self, title: str, text: str, tags: list[str]) -> str | None: ...

    def close(self) -> None: ...
