"""Guards: sustained breaches stop a stage, blips do not; generator-bound stages are invalid, not failures."""

from __future__ import annotations

from capacity.core.models import SecondSample
from capacity.judge.guards import StageTotals, judge_stage, judge_window
from capacity.judge.verdict import decide
from capacity.plan.experiment import Guards


def sec(
    i: int, offered: int = 100, ok: int = 100, errors: int = 0, dropped: int = 0, p95: float = 50.0, cpu: float = 20.0
) -> SecondSample:
    return SecondSample(
        stage=0,
        t=float(i),
        phase="measure",
        target_rps=100,
        offered=offered,
        ok=ok,
        errors=errors,
        dropped=dropped,
        inflight=5,
        p50_ms=p95 / 2,
        p95_ms=p95,
        p99_ms=p95 * 1.5,
        generator_cpu_pct=cpu,
    )


G = Guards(window_seconds=3, slo_p95_ms=200, max_error_ratio=0.01)


def test_healthy_window_has_no_breach() -> None:
    assert judge_window([sec(i) for i in range(10)], G) == []


def test_single_slow_second_is_a_blip_three_are_a_breach() -> None:
    blip = [sec(i) for i in range(8)] + [sec(8, p95=900), sec(9)]
    assert judge_window(blip, G) == []
    sustained = [sec(i) for i in range(7)] + [sec(i, p95=900) for i in range(7, 10)]
    codes = [b.code for b in judge_window(sustained, G)]
    assert codes == ["p95"]


def test_errors_goodput_dropped_and_generator() -> None:
    errs = [sec(i) for i in range(5)] + [sec(i, ok=90, errors=10) for i in range(5, 8)]
    assert "errors" in [b.code for b in judge_window(errs, G)]
    slow = [sec(i) for i in range(5)] + [sec(i, ok=60) for i in range(5, 8)]
    assert "goodput" in [b.code for b in judge_window(slow, G)]
    drop = [sec(i) for i in range(5)] + [sec(i, offered=80, ok=80, dropped=20) for i in range(5, 8)]
    assert "dropped" in [b.code for b in judge_window(drop, G)]
    hot = [sec(i) for i in range(5)] + [sec(i, cpu=97) for i in range(5, 8)]
    breaches = judge_window(hot, G)
    assert [b.code for b in breaches] == ["generator"]
    assert decide(breaches) == "invalid: generator"


def test_first_seconds_are_not_judged() -> None:
    starting = [sec(0, ok=0), sec(1, ok=10), sec(2)]
    assert judge_window(starting, G) == []


def test_low_rate_noise_is_not_judged() -> None:
    tiny = [sec(i, offered=3, ok=2, errors=1) for i in range(6)]
    assert [b.code for b in judge_window(tiny, G)] == []


def test_whole_stage_rules() -> None:
    t = StageTotals(
        target_rps=100,
        offered_rps=100,
        achieved_rps=80,
        requests=1000,
        ok=800,
        errors=200,
        dropped=0,
        p95_ms=300,
        p99_ms=400,
        generator_cpu_pct=30,
    )
    codes = {b.code for b in judge_stage(t, G)}
    assert codes == {"errors", "p95", "goodput"}
    assert decide(judge_stage(t, G)) == "fail"
    good = StageTotals(
        target_rps=100,
        offered_rps=100,
        achieved_rps=99.5,
        requests=1000,
        ok=1000,
        errors=0,
        dropped=0,
        p95_ms=100,
        p99_ms=150,
        generator_cpu_pct=30,
    )
    assert judge_stage(good, G) == []
    assert decide([]) == "pass"
    assert decide([], interrupted=True) == "interrupted"
    assert decide([], worker_lost=True) == "invalid: worker lost"
