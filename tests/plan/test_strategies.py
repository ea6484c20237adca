"""Search strategies against a simulated target whose edge is known: the plan converges and never overshoots."""

from __future__ import annotations

import pytest

from capacity.plan.experiment import StagePlanSettings
from capacity.plan.strategies import AdaptiveStrategy, StepStrategy, make_strategy, preview


def drive(strategy, edge: float, limit: int = 100) -> list[tuple[float, bool]]:
    visited = []
    while (p := strategy.next_stage()) is not None and len(visited) < limit:
        ok = p.rate <= edge
        visited.append((p.rate, ok))
        strategy.record(p.rate, ok, goodput=min(p.rate, edge))
    return visited


@pytest.mark.parametrize("edge", [37.0, 160.0, 333.0])
def test_adaptive_converges_to_resolution_and_never_exceeds_first_bad(edge: float) -> None:
    s = StagePlanSettings(
        start_rps=10, max_rps=1000, growth=2.0, resolution=0.05, stage_seconds=10, warmup_seconds=1, max_stages=30
    )
    strat = AdaptiveStrategy(s)
    visited = drive(strat, edge)
    first_bad = next(r for r, ok in visited if not ok)
    assert max(r for r, _ in visited) == first_bad
    assert strat.good is not None and strat.bad is not None
    assert strat.good <= edge < strat.bad
    assert (strat.bad - strat.good) / strat.good < 0.05
    assert strat.stop_reason == "resolution"


def test_goodput_hint_is_probed_not_assumed() -> None:
    s = StagePlanSettings(start_rps=10, max_rps=1000, growth=2.0, resolution=0.05, stage_seconds=10, warmup_seconds=1)
    strat = AdaptiveStrategy(s)
    for rate in (10, 20, 40, 80):
        assert strat.next_stage().rate == rate  # type: ignore[union-attr]
        strat.record(rate, True, goodput=rate)
    p = strat.next_stage()
    assert p is not None and p.rate == 160
    strat.record(160, False, goodput=100)  # saturated at ~100/s
    hint = strat.next_stage()
    assert hint is not None and hint.rate == 105 and "delivered only" in hint.why
    strat.record(105, True, goodput=105)  # the hint was wrong: more capacity than it said
    assert strat.good == 105 and strat.bad == 160
    nxt = strat.next_stage()
    assert nxt is not None and nxt.rate == (105 + 160) / 2


def test_adaptive_needs_fewer_stages_than_fine_linear() -> None:
    s = StagePlanSettings(
        start_rps=10, max_rps=400, growth=2.0, resolution=0.05, stage_seconds=10, warmup_seconds=1, max_stages=100
    )
    adaptive = drive(AdaptiveStrategy(s), 160)
    lin = StagePlanSettings(
        strategy="linear", start_rps=10, max_rps=400, step_rps=8, stage_seconds=10, warmup_seconds=1, max_stages=100
    )
    linear = drive(StepStrategy(lin), 160)
    assert len(adaptive) * 2 <= len(linear)


def test_adaptive_stops_at_max_rps_when_everything_passes() -> None:
    s = StagePlanSettings(start_rps=10, max_rps=50, growth=2.0, stage_seconds=10, warmup_seconds=1)
    strat = AdaptiveStrategy(s)
    visited = drive(strat, 1e9)
    assert [r for r, _ in visited] == [10, 20, 40, 50]
    assert strat.stop_reason == "max_rps"


def test_first_stage_failure_stops() -> None:
    s = StagePlanSettings(start_rps=100, max_rps=500, stage_seconds=10, warmup_seconds=1)
    strat = AdaptiveStrategy(s)
    visited = drive(strat, 50)
    assert visited == [(100, False)]
    assert strat.stop_reason == "first_stage_failed"


def test_confirm_repeat_failing_moves_good_down() -> None:
    s = StagePlanSettings(
        start_rps=10, max_rps=1000, growth=2.0, resolution=0.1, confirm=True, stage_seconds=10, warmup_seconds=1
    )
    strat = AdaptiveStrategy(s)
    calls = 0

    def flaky_edge(rate: float) -> bool:
        nonlocal calls
        calls += 1
        return rate <= 100

    while (p := strat.next_stage()) is not None:
        ok = flaky_edge(p.rate) and p.kind != "confirm"  # the confirmation fails
        strat.record(p.rate, ok)
    kinds = [p.kind for p, _ in strat.history]
    assert "confirm" in kinds
    assert strat.good is None or strat.good < strat.bad


def test_linear_and_geometric_stop_at_first_failure_and_clamp_to_max() -> None:
    lin = StepStrategy(
        StagePlanSettings(strategy="linear", start_rps=10, step_rps=30, max_rps=100, stage_seconds=10, warmup_seconds=1)
    )
    assert [r for r, _ in drive(lin, 1e9)] == [10, 40, 70, 100]
    assert lin.stop_reason == "max_rps"
    geo = make_strategy(
        StagePlanSettings(strategy="geometric", start_rps=10, growth=3, max_rps=100, stage_seconds=10, warmup_seconds=1)
    )
    assert [r for r, _ in drive(geo, 50)] == [10, 30, 90]


def test_preview_worst_case_bounded_by_budget() -> None:
    s = StagePlanSettings(start_rps=10, max_rps=1000, growth=2, stage_seconds=60, warmup_seconds=5, max_duration_s=300)
    p = preview(s)
    assert p.ramp_rates[0] == 10 and p.ramp_rates[-1] == 1000
    assert p.worst_case_s == 300


def test_plateau_below_last_good_probes_just_above_it_and_stops() -> None:
    """A failing stage whose goodput sits below the last good rate: one probe closes the gap."""
    s = StagePlanSettings(start_rps=100, max_rps=1000, growth=2.0, resolution=0.05, stage_seconds=10, warmup_seconds=1)
    strat = AdaptiveStrategy(s)
    strat.next_stage()
    strat.record(100, True, goodput=100)
    assert strat.next_stage().rate == 200  # type: ignore[union-attr]
    strat.record(200, False, goodput=150)
    hint = strat.next_stage()
    assert hint is not None and hint.rate == pytest.approx(157.5)
    strat.record(157.5, True, goodput=157)
    mid = strat.next_stage()
    assert mid is not None and mid.rate == pytest.approx((157.5 + 200) / 2)
    strat.record(mid.rate, False, goodput=155)  # the plateau again, below the last good: probe just above that
    close = strat.next_stage()
    assert close is not None and close.rate == pytest.approx(157.5 * 1.045)
    strat.record(close.rate, False, goodput=158)
    assert strat.next_stage() is None and strat.stop_reason == "resolution"
