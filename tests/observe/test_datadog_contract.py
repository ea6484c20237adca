"""The real datadog-api-client against a local server speaking Datadog's wire format."""

from __future__ import annotations

import time
from typing import Any

import pytest

from capacity.core.errors import CapacityError, MetricsAuthError
from capacity.observe import build_source, resolve_queries
from capacity.observe.datadog import DatadogSource
from capacity.observe.datadog_settings import DatadogEndpoint, PollSettings, QueryPlan, RetryPolicy
from capacity.observe.queries import cpu_divisors, query_rollups
from tests.observe.conftest import API_KEY, APP_KEY, QUEUE_GROWTH, make_exp, past_window, populate, task_cpu_pct
from tests.observe.fake_datadog import FakeDatadog, Fault


def source(fake: FakeDatadog, *, sleeps: list[float] | None = None, **kw: Any) -> DatadogSource:
    exp = make_exp(fake.url, **kw.pop("metrics", {}))
    m = exp.metrics

    def sleep(s: float) -> None:
        if sleeps is not None:
            sleeps.append(s)
        time.sleep(min(s, 0.05))

    retry: dict[str, Any] = {"max_retries": 2, "backoff_s": 0.01, "read_timeout_s": 2.0, **kw}
    queries = resolve_queries(m)
    return DatadogSource(
        DatadogEndpoint(fake.url, API_KEY, APP_KEY),
        QueryPlan(
            queries,
            rollup_s=m.rollup_seconds,
            rollups=query_rollups(m),
            divisors=cpu_divisors(queries, exp.cluster),
            max_threads=5.0,
        ),
        retry=RetryPolicy(**retry),
        poll=PollSettings(deadline_s=m.poll_deadline_s, interval_s=m.poll_interval_s),
        events=m.events,
        sleep=sleep,
    )


def test_default_query_set_is_one_call_and_aggregates_match_truth(fake: FakeDatadog) -> None:
    w = past_window()
    populate(fake, w.start_s - 30, w.end_s + 10)
    fake.nulls = True  # empty buckets come back as null, as Datadog does
    src = source(fake)
    sm = src.fetch_stage(w)
    assert fake.calls() == 1 and sm.calls == 1
    q = fake.requests[-1]["params"]
    assert int(q["from"]) <= w.start_s and int(q["to"]) >= w.end_s  # seconds, not ms
    assert q["query"].count(".rollup(") == 12  # all twelve default queries in one parameter
    a = sm.aggregates
    # task CPU: app container + sidecars summed per task, over the task's 2 vCPUs (ECS's own figure)
    assert a["cpu_pct"] == pytest.approx((task_cpu_pct("aaaa1111") + task_cpu_pct("bbbb2222")) / 2)
    assert a["cpu_pct_max"] == pytest.approx(task_cpu_pct("bbbb2222")) == pytest.approx(32.0)
    assert a["cpu_pct[aaaa1111]"] == pytest.approx(task_cpu_pct("aaaa1111"))
    assert a["cpu_container_pct"] == pytest.approx(50.0) and a["cpu_container_pct_max"] == pytest.approx(60.0)
    assert a["mem_pct_max"] == pytest.approx(600 / 1024 * 100)
    assert a["mem_mb_max"] == pytest.approx(600.0)
    assert a["pool_busy_pct"] == pytest.approx(70.0) and a["pool_busy_pct_max"] == pytest.approx(80.0)
    assert a["backlog_max"] == pytest.approx(3.0)
    assert a["queue_growth_per_s"] == pytest.approx(QUEUE_GROWTH, rel=0.02)
    assert a["queue_growth_per_s[mailers]"] == pytest.approx(0.0, abs=1e-9)
    assert a["queue_latency_s_max"] == pytest.approx(4.0)
    assert a["jobs_per_s"] == pytest.approx(10.0)
    assert a["sidekiq_cpu_pct"] == pytest.approx(30.0)
    assert set(sm.completeness.values()) == {1.0} and not sm.missing and sm.seconds_to_complete is not None
    # tidy table: several groups, only the window's full buckets (4 of 5 s in a 20 s window)
    assert list(sm.frame.columns) == ["stage", "metric", "group", "t", "value"]
    cpu = sm.frame[sm.frame["metric"] == "cpu_pct"]
    assert cpu["group"].nunique() == 2 and len(cpu) == 2 * 3
    assert cpu["t"].min() >= w.start_s and cpu["t"].max() + 5 <= w.end_s
    src.close()


def test_units_are_converted_to_base_units(fake: FakeDatadog) -> None:
    w = past_window()
    populate(fake, w.start_s - 30, w.end_s + 10, mem_unit="mebibyte")
    sm = source(fake).fetch_stage(w)
    assert sm.aggregates["mem_mb_max"] == pytest.approx(600.0)
    assert sm.aggregates["mem_pct_max"] == pytest.approx(600 / 1024 * 100)


def test_partial_window_is_polled_until_covered(fake: FakeDatadog) -> None:
    """Data lags 2.5 s behind real time: the fetch waits, then reports how long after the window it was whole.

    The last full 1-s bucket starts 1-2 s before the window's end, so it shows up lag - (1..2) s after it.
    """
    now = time.time()
    from datetime import UTC, datetime

    from capacity.observe import StageWindow

    w = StageWindow(1, datetime.fromtimestamp(now - 6, UTC), datetime.fromtimestamp(now, UTC))
    populate(fake, now - 30, now + 6)
    fake.lag_s = {"": 2.5}
    src = source(fake, metrics={"rollup_seconds": 1, "poll_deadline_s": 8, "poll_interval_s": 0.25})
    sm = src.fetch_stage(w)
    assert set(sm.completeness.values()) == {1.0}
    assert sm.seconds_to_complete is not None and 0.4 <= sm.seconds_to_complete <= 2.5
    assert sm.calls >= 3  # several polls, each one batched call


def test_partial_window_past_deadline_records_completeness(fake: FakeDatadog) -> None:
    w = past_window(seconds=20, ago=5)
    populate(fake, w.start_s - 30, w.start_s + 10)  # only the first half of the window has data
    src = source(fake, metrics={"poll_deadline_s": 0})
    sm = src.fetch_stage(w)
    assert 0.3 <= sm.completeness["cpu_pct"] <= 0.75
    assert sm.seconds_to_complete is None and sm.aggregates["cpu_container_pct"] == pytest.approx(50.0)


def test_429_then_success_honours_capped_reset(fake: FakeDatadog) -> None:
    w = past_window()
    populate(fake, w.start_s - 30, w.end_s + 10)
    fake.fail(
        "/api/v1/query",
        Fault(
            429,
            {
                "X-RateLimit-Limit": "1600",
                "X-RateLimit-Period": "3600",
                "X-RateLimit-Remaining": "0",
                "X-RateLimit-Reset": "1200",
            },
            {"errors": ["Rate limit of 1600 requests in 3600 seconds reached."]},
        ),
    )
    sleeps: list[float] = []
    src = source(fake, sleeps=sleeps, rate_limit_cap_s=0.4)
    sm = src.fetch_stage(w)
    assert sleeps == [0.4]  # the 1200 s reset, capped
    assert sm.calls == 2 and fake.calls() == 2 and not sm.missing


def test_500_then_success_and_persistent_500_marks_missing(fake: FakeDatadog) -> None:
    w = past_window()
    populate(fake, w.start_s - 30, w.end_s + 10)
    fake.fail("/api/v1/query", Fault(500))
    sm = source(fake).fetch_stage(w)
    assert sm.calls == 2 and not sm.missing
    fake.fail("/api/v1/query", *[Fault(503)] * 3)
    sm = source(fake).fetch_stage(w, wait=False)
    assert sm.calls == 3  # 1 + max_retries, then the run goes on
    assert set(sm.missing) == set(sm.completeness) and sm.aggregates == {}
    assert any("HTTP 503 after 3 attempts" in x for x in sm.warnings)


def test_timeout_is_retried(fake: FakeDatadog) -> None:
    w = past_window()
    populate(fake, w.start_s - 30, w.end_s + 10)
    fake.fail("/api/v1/query", Fault(action="timeout", delay_s=1.0))
    t = time.monotonic()
    sm = source(fake, read_timeout_s=0.3).fetch_stage(w)
    assert time.monotonic() - t < 5 and sm.calls == 2 and not sm.missing


def test_malformed_json_marks_missing_with_warning(fake: FakeDatadog) -> None:
    w = past_window()
    populate(fake, w.start_s - 30, w.end_s + 10)
    fake.fail("/api/v1/query", *[Fault(action="malformed")] * 3)
    sm = source(fake).fetch_stage(w, wait=False)
    assert set(sm.missing) == set(sm.completeness)
    assert any("not JSON" in x for x in sm.warnings)


def test_bad_query_is_isolated_and_preflight_names_it(fake: FakeDatadog) -> None:
    w = past_window()
    populate(fake, w.start_s - 30, w.end_s + 10)
    fake.reject_metrics = {"puma.backlog"}
    src = source(fake)
    sm = src.fetch_stage(w, wait=False)
    assert sm.missing == ["backlog"] and sm.aggregates["cpu_container_pct"] == pytest.approx(50.0)
    with pytest.raises(CapacityError, match=r"metrics\.queries\.backlog: Datadog rejected the query \(400\)"):
        src.preflight()


def test_preflight_403_names_the_variable_never_the_key(fake: FakeDatadog, monkeypatch: pytest.MonkeyPatch) -> None:
    exp = make_exp(fake.url)
    monkeypatch.setenv("DD_API_KEY", "wrong-" + API_KEY)
    monkeypatch.setenv("DD_APP_KEY", APP_KEY)
    src = build_source(exp)
    assert src is not None
    with pytest.raises(MetricsAuthError) as err:
        src.preflight()
    assert "DD_API_KEY" in str(err.value) and API_KEY not in str(err.value) and "\n" not in str(err.value)
    monkeypatch.setenv("DD_API_KEY", API_KEY)
    monkeypatch.setenv("DD_APP_KEY", "wrong-" + APP_KEY)
    src = build_source(exp)
    assert src is not None
    with pytest.raises(MetricsAuthError, match="DD_APP_KEY") as err:
        src.preflight()
    assert APP_KEY not in str(err.value)
    monkeypatch.setenv("DD_APP_KEY", APP_KEY)
    src = build_source(exp)
    assert src is not None
    src.preflight()  # good keys: validate + one batched query
    assert fake.calls("/api/v1/validate") == 3


def test_missing_key_variable_is_an_error_before_any_call(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DD_API_KEY", raising=False)
    monkeypatch.setenv("DD_APP_KEY", "x")
    with pytest.raises(MetricsAuthError, match="DD_API_KEY is not set"):
        build_source(make_exp("http://127.0.0.1:9"))
    assert build_source(make_exp("http://127.0.0.1:9", source="none")) is None


def test_events_keep_id_str_and_are_opt_in(fake: FakeDatadog) -> None:
    off = source(fake)
    assert off.post_event("capacity: run start", "x", ["run_id:r1"]) is None and not fake.events
    on = source(fake, metrics={"events": True})
    eid = on.post_event("capacity: stage 0", "20 req/s: pass", ["run_id:r1", "experiment:e", "stage:0"])
    assert eid == fake.events[0]["id_str"] and int(eid) > 2**53  # beyond float precision: id_str matters
    assert fake.events[0]["tags"] == ["run_id:r1", "experiment:e", "stage:0"]


def test_late_cloudwatch_metric_is_not_waited_for(fake: FakeDatadog) -> None:
    w = past_window(ago=2)
    populate(fake, w.start_s - 30, w.end_s + 10)
    fake.add(
        "aws.ecs.service.running",
        ["clustername:staging", "servicename:cw-app"],
        [(t, 2.0) for t in range(int(w.start_s) - 30, int(w.end_s) + 10)],
    )
    fake.lag_s = {"aws.": 600}
    src = source(fake, metrics={"queries": {"extra": {"running_tasks": "avg:aws.ecs.service.running{*}"}}})
    t = time.monotonic()
    sm = src.fetch_stage(w)
    assert time.monotonic() - t < 2  # did not sit out the deadline for it
    assert sm.completeness["running_tasks"] == 0.0 and "running_tasks" in sm.missing
    assert sm.completeness["cpu_pct"] == 1.0
    assert any("late CloudWatch" in x for x in sm.warnings)


def test_unreachable_datadog_fails_preflight_in_one_line() -> None:
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    src = DatadogSource(
        DatadogEndpoint(f"http://127.0.0.1:{port}", API_KEY, APP_KEY),
        QueryPlan({"cpu_pct": "avg:x{*}"}),
        retry=RetryPolicy(max_retries=1, backoff_s=0.01),
    )
    with pytest.raises(CapacityError, match=r"unavailable: validate: connection failed .* after 2 attempts") as err:
        src.preflight()
    assert "\n" not in str(err.value) and API_KEY not in str(err.value) and src.calls == 2
