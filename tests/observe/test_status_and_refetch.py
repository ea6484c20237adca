"""HTTP outcomes read from the exception (status, timeout type), and the one rule for a better re-fetch."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest
import urllib3

from capacity.core.errors import MetricsAuthError
from capacity.core.models import StageResult
from capacity.observe.datadog import DatadogSource
from capacity.observe.datadog_http import _timed_out
from capacity.observe.datadog_settings import DatadogEndpoint, PollSettings, QueryPlan, RetryPolicy
from capacity.observe.refetch import better, due, refetch_incomplete
from capacity.observe.stage_metrics import StageMetrics, StageWindow
from tests.helpers import make_stage_result
from tests.observe.conftest import API_KEY, APP_KEY, past_window, populate
from tests.observe.fake_datadog import FakeDatadog, Fault


def _source(fake: FakeDatadog) -> DatadogSource:
    return DatadogSource(
        DatadogEndpoint(fake.url, API_KEY, APP_KEY),
        QueryPlan({"cpu_pct": "avg:ecs.fargate.cpu.percent{*}.rollup(avg, 5)"}),
        retry=RetryPolicy(max_retries=0),
        sleep=lambda s: None,
    )


@pytest.mark.parametrize("status", [401, 403])
def test_a_refused_query_at_preflight_reports_the_status_it_got(fake: FakeDatadog, status: int) -> None:
    fake.fail("/api/v1/query", Fault(status=status, body={"errors": ["Forbidden"]}))
    with pytest.raises(MetricsAuthError, match=f"HTTP {status};"):
        _source(fake).preflight()


def test_a_refused_query_during_a_stage_marks_metrics_missing_not_fatal(fake: FakeDatadog) -> None:
    w = past_window()
    populate(fake, w.start_s - 30, w.end_s + 10)
    fake.fail("/api/v1/query", Fault(status=403))
    src = _source(fake)
    src.poll = PollSettings(deadline_s=0.0)
    sm = src.fetch_stage(w, wait=False)
    assert sm.missing == ["cpu_pct"] and "HTTP 403" in sm.warnings[0]


def test_timeouts_are_told_by_their_type_not_their_message() -> None:
    read = urllib3.exceptions.ReadTimeoutError(None, "/api", "no answer")  # type: ignore[arg-type]
    refused = urllib3.exceptions.NewConnectionError(None, "refused")  # type: ignore[arg-type]
    assert _timed_out(read) and _timed_out(TimeoutError("x"))
    assert _timed_out(urllib3.exceptions.MaxRetryError(None, "/api", reason=read))  # type: ignore[arg-type]
    assert not _timed_out(refused) and not _timed_out(OSError("timed out"))
    assert not _timed_out(urllib3.exceptions.MaxRetryError(None, "/api", reason=refused))  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------ refetch rule
T0 = datetime(2024, 1, 1, tzinfo=UTC)


def _stage(index: int, completeness: dict[str, float], *, window: bool = True) -> StageResult:
    return make_stage_result(
        index=index,
        target_rps=10,
        p50_ms=1,
        p95_ms=2,
        p99_ms=3,
        metrics={"cpu_pct": 40.0, "kept": 1.0},
        metrics_completeness=completeness,
        measure_from=T0 if window else None,
        ended_at=T0 + timedelta(seconds=20) if window else None,
    )


class _Source:
    """Answers each stage with the completeness it is given; records the windows it was asked for."""

    def __init__(self, answers: dict[int, dict[str, float]]) -> None:
        self.answers = answers
        self.asked: list[tuple[int, bool]] = []

    def preflight(self) -> None: ...

    def fetch_stage(self, window: StageWindow, *, wait: bool = True) -> StageMetrics:
        self.asked.append((window.stage, wait))
        comp = self.answers[window.stage]
        return StageMetrics(pd.DataFrame(), {"cpu_pct": 50.0, "running_tasks": 2.0}, comp, calls=1)

    def post_event(self, title: str, text: str, tags: list[str]) -> str | None:
        return None

    def close(self) -> None: ...


def test_better_means_strictly_higher_total_completeness() -> None:
    assert better({"a": 1.0, "b": 0.0}, {"a": 1.0, "b": 0.5})
    assert not better({"a": 1.0, "b": 0.5}, {"a": 1.0, "b": 0.5})
    assert not better({"a": 1.0, "b": 0.0}, {"a": 0.0, "b": 1.0})  # gains one, loses another: keep what is stored
    assert better({}, {"a": 0.1})  # never fetched


def test_due_stages_are_the_incomplete_ones_with_a_window() -> None:
    assert due(_stage(0, {"a": 1.0, "b": 0.5})) and due(_stage(0, {}))
    assert not due(_stage(0, {"a": 1.0})) and due(_stage(0, {"a": 1.0}), force=True)
    assert not due(_stage(0, {}, window=False), force=True)


def test_refetch_returns_every_fetch_and_merges_only_better_ones() -> None:
    stages = [_stage(0, {"a": 1.0}), _stage(1, {"a": 1.0, "b": 0.0}), _stage(2, {"a": 1.0, "b": 0.5})]
    src = _Source({1: {"a": 1.0, "b": 1.0}, 2: {"a": 0.5, "b": 0.5}})
    out = refetch_incomplete(src, stages)
    assert src.asked == [(1, False), (2, False)]  # never waits: late metrics are late
    assert [(x.before.index, x.improved) for x in out] == [(1, True), (2, False)]
    assert out[0].after.metrics == {"cpu_pct": 50.0, "kept": 1.0, "running_tasks": 2.0}
    assert out[0].after.metrics_completeness == {"a": 1.0, "b": 1.0}
    assert out[1].after is stages[2]
