"""judge_measurement: verdict precedence, breaches from every source, and reasons written from the records."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hdrh.histogram import HdrHistogram

from capacity.core.breach import STAGE, Breach, rolling
from capacity.core.measurement import StageMeasurement, StageSpec
from capacity.core.models import EndpointStats, SecondSample, StageResult
from capacity.judge.recovery import latency_breach, queue_breach
from capacity.judge.server_guards import metric_guard_breaches
from capacity.judge.verdict import ServerSide, judge_measurement
from capacity.plan.experiment import EndpointGuards, Guards
from capacity.search.progress import short_verdict

G = Guards(window_seconds=3, slo_p95_ms=200, max_error_ratio=0.01, max_mem_pct=90)
T0 = datetime(2024, 1, 1, tzinfo=UTC)


def measurement(
    *,
    latency_ms: float = 50.0,
    errors: int = 0,
    cpu: float = 20.0,
    unfinished: int = 0,
    endpoints: dict[str, EndpointStats] | None = None,
    **flags: bool | str | None,
) -> StageMeasurement:
    """20 s at 100/s (5 s warm-up), every request taking ``latency_ms``."""
    h = HdrHistogram(1, 60_000_000, 3)
    ok = 1500 - errors - unfinished
    h.record_value(int(latency_ms * 1000), 1500)
    seconds = [
        SecondSample(
            stage=0,
            t=T0.timestamp() + i,
            phase="warmup" if i < 5 else "measure",
            target_rps=100,
            offered=100,
            ok=100 - (errors // 15 if i >= 5 else 0),
            errors=errors // 15 if i >= 5 else 0,
            dropped=0,
            inflight=5,
            p95_ms=latency_ms,
            generator_cpu_pct=cpu,
        )
        for i in range(20)
    ]
    return StageMeasurement(
        spec=StageSpec(index=0, target_rps=100, duration_s=20, warmup_s=5),
        started_at=T0,
        measure_from=T0 + timedelta(seconds=5),
        ended_at=T0 + timedelta(seconds=20),
        seconds=seconds,
        histogram=h,
        requests=1500,
        ok=ok,
        errors=errors,
        dropped=0,
        status_codes={"200": ok},
        endpoints=endpoints or {},
        unfinished=unfinished,
        aborted_in_warmup=bool(flags.get("aborted_in_warmup")),
        aborted=flags.get("aborted"),  # type: ignore[arg-type]
        interrupted=bool(flags.get("interrupted")),
        worker_lost=bool(flags.get("worker_lost")),
        generator_cpu_max_pct=cpu,
        max_inflight_seen=5,
        records_exhausted=0,
    )


def test_healthy_stage_passes_with_no_reason() -> None:
    result = judge_measurement(measurement(), G)
    breaches = result.breaches
    assert (result.verdict, result.reasons, breaches, result.breaches) == ("pass", [], [], [])


def test_whole_stage_breaches_fail_it_and_their_text_is_the_reasons() -> None:
    result = judge_measurement(measurement(latency_ms=400, errors=30), G)
    breaches = result.breaches
    assert result.verdict == "fail"
    assert [b.code for b in breaches] == ["errors", "p95"]
    assert result.reasons == [b.text for b in breaches] and result.breaches == breaches
    p95 = breaches[1]
    assert (p95.metric, p95.limit, p95.window) == ("p95_ms", 200, STAGE)
    assert p95.value is not None and 399 < p95.value < 401


def test_live_breach_stands_and_is_not_repeated_by_the_whole_stage_rule() -> None:
    live = Breach("p95", "p95_ms", "p95 over SLO 200 ms for 3 s (lowest 400 ms)", 400.0, 200.0, window=rolling(3))
    result = judge_measurement(measurement(latency_ms=400), G, live_breaches=[live])
    breaches = result.breaches
    assert breaches == [live]
    assert result.reasons[0] == live.text


def test_server_metric_breaches_join_with_their_codes_and_notes_follow() -> None:
    metric = metric_guard_breaches({"mem_pct_max[cpu-heavy]": 95.0}, G)
    result = judge_measurement(measurement(), G, server=ServerSide(breaches=metric, notes=["metrics missing: backlog"]))
    breaches = result.breaches
    assert result.verdict == "fail" and [b.code for b in breaches] == ["memory"]
    assert result.reasons == ["memory 95% > 90% (task cpu-heavy)", "metrics missing: backlog"]
    assert short_verdict(result) == "fail: memory 95 (cpu-heavy)"


def test_precedence_interrupted_then_invalid_then_fail() -> None:
    slow_busy = {"latency_ms": 400.0, "cpu": 99.0}
    interrupted = judge_measurement(measurement(**slow_busy, interrupted=True, worker_lost=True), G)
    assert interrupted.verdict == "interrupted" and interrupted.reasons[0] == "interrupted by the user"
    lost = judge_measurement(measurement(**slow_busy, worker_lost=True), G)
    lost_breaches = lost.breaches
    assert lost.verdict == "invalid: worker lost" and "worker-lost" in [b.code for b in lost_breaches]
    generator = judge_measurement(measurement(**slow_busy), G)
    assert generator.verdict == "invalid: generator"
    assert short_verdict(generator).startswith("invalid: generator: generator 99")
    failed = judge_measurement(measurement(latency_ms=400), G)
    assert failed.verdict == "fail" and short_verdict(failed) == "fail: p95 400"


def test_breaches_survive_the_stage_json_round_trip() -> None:
    result = judge_measurement(measurement(latency_ms=400), G)
    again = StageResult.model_validate_json(result.model_dump_json())
    assert again.breaches == result.breaches and again.reasons == result.reasons


def test_recovery_rules_yield_records() -> None:
    assert latency_breach(12.0, 15.0, 10.0) is None
    slow = latency_breach(40.0, 15.0, 10.0)
    assert slow is not None and (slow.code, slow.window, slow.text) == (
        "latency",
        "recovery",
        "latency 40 ms (baseline 10 ms)",
    )
    silent = latency_breach(None, 15.0, 10.0)
    assert silent is not None and silent.value is None
    assert queue_breach(3.0, 0.0) is None and queue_breach(None, None) is None
    deep = queue_breach(40.0, 2.0)
    assert deep is not None and (deep.code, deep.metric, deep.text) == (
        "queue",
        "queue_size",
        "job queue still 40 deep (baseline unknown, limit 5)",
    )
    backlog = queue_breach(None, 2.0)
    assert backlog is not None and backlog.code == "backlog"


def test_blind_guards_are_recorded_and_said_but_never_fail_a_stage() -> None:
    result = judge_measurement(measurement(), G, server=ServerSide(blind=["pool_capacity", "backlog"]))
    breaches = result.breaches
    assert result.verdict == "pass" and breaches == [] and result.blind == ["pool_capacity", "backlog"]
    assert result.reasons == ["blind guard(s), no data for: pool_capacity, backlog"]
    assert short_verdict(result) == "pass (blind: pool_capacity, backlog)"


def test_unfinished_requests_are_failures_and_make_the_percentiles_lower_bounds() -> None:
    result = judge_measurement(measurement(unfinished=30, aborted="p95"), G)
    breaches = result.breaches
    assert result.unfinished == 30 and result.percentiles_censored
    assert result.error_ratio == 30 / 1500  # ok + errors + unfinished in the denominator, unfinished above it
    assert [b.code for b in breaches] == ["errors"]
    assert any("30 request(s) unfinished" in r and "lower bounds" in r for r in result.reasons)
    assert result.reasons[0] == breaches[0].text  # the breach stays first (the search path shows it)


def test_a_stage_stopped_in_its_warm_up_says_its_figures_cover_the_warm_up() -> None:
    result = judge_measurement(measurement(aborted="p95", aborted_in_warmup=True), G)
    assert result.aborted_in_warmup and result.aborted_early
    assert any("stopped in its warm-up" in r for r in result.reasons)


def test_per_endpoint_slo_names_the_endpoint_that_breached() -> None:
    eps = {
        "demographics": EndpointStats(requests=1000, ok=1000, p50_ms=120, p95_ms=480.0, p99_ms=600),
        "checkin": EndpointStats(requests=500, ok=500, p50_ms=20, p95_ms=40.0, p99_ms=60),
    }
    limit = EndpointGuards(slo_p95_ms=300)
    guards = G.model_copy(update={"endpoints": {"demographics": limit, "checkin": limit}})
    result = judge_measurement(measurement(endpoints=eps), guards)
    breaches = result.breaches
    assert result.verdict == "fail" and [(b.code, b.scope) for b in breaches] == [("p95", "demographics")]
    assert breaches[0].value == 480.0 and breaches[0].limit == 300
    assert result.reasons == ["demographics: p95 480 ms > SLO 300 ms"]
    assert short_verdict(result) == "fail: p95 480 (demographics)"
    assert result.endpoints == eps and result.worst_endpoint == "demographics"
    # a stage-wide p95 breach does not hide an endpoint's own (different scope)
    live = [Breach("p95", "p95_ms", "p95 over SLO", 900.0, 200.0, window=rolling(3))]
    both = judge_measurement(measurement(endpoints=eps, aborted="p95"), guards, live_breaches=live)
    assert [(b.code, b.scope) for b in both.breaches] == [("p95", ""), ("p95", "demographics")]


def test_a_stage_stopped_on_p95_never_reports_a_lower_p95_than_the_window_that_stopped_it() -> None:
    """The stage's histogram holds the fast seconds before the queue built (here 250 ms); the window that
    failed it read at least 400 ms each second, so the stage reads at least 400 (and p99 at least p95)."""
    live = Breach("p95", "p95_ms", "p95 over SLO 200 ms for 3 s (lowest 400 ms)", 400.0, 200.0, window=rolling(3))
    result = judge_measurement(measurement(latency_ms=250, aborted="p95"), G, live_breaches=[live])
    assert result.verdict == "fail"
    assert result.p95_ms == 400.0
    assert result.p99_ms is not None and result.p99_ms >= 400.0
    # a stage whose own figures are already above the window keeps them
    result = judge_measurement(measurement(latency_ms=900, aborted="p95"), G, live_breaches=[live])
    assert result.p95_ms is not None and result.p95_ms > 899


def test_requests_still_refused_after_the_retry_make_the_stage_invalid_auth_not_a_knee() -> None:
    from dataclasses import replace

    from capacity.judge.verdict import auth_failure, decide
    from capacity.search import stop_rules as rules

    assert auth_failure({"200": 990, "401": 10}, 0.01) is None  # 1.0%: at the limit
    why = auth_failure({"200": 900, "401": 60, "403": 40}, 0.01)
    assert why == (
        "auth: 100 of 1000 requests refused (401/403) after a retry with a fresh token, 10.0% > 1.0%: "
        "the token, not the target (not a knee)"
    )
    assert decide([], auth=True, interrupted=True) == "interrupted"
    meas = replace(measurement(errors=150), status_codes={"200": 1350, "401": 150}, auth_retries=7)
    result = judge_measurement(meas, G)
    breaches = result.breaches
    assert result.verdict == "invalid: auth" and result.reasons[0] == auth_failure(meas.status_codes, 0.01)
    assert result.auth_retries == 7 and any(b.code == "errors" for b in breaches)
    after = rules.after_stage(result, interrupted=False)
    assert after.stop == "auth" and not after.judged
    healthy = judge_measurement(replace(measurement(), auth_retries=12), G)
    assert healthy.verdict == "pass" and healthy.auth_retries == 12  # retried requests are not errors
