"""compare_runs: regression only past the threshold with separate intervals; inconclusive without figures."""

from __future__ import annotations

import pytest

from capacity.core.models import Estimate, RunSummary
from capacity.report.compare import compare_runs


def summary(
    value: float | None,
    lo: float | None = None,
    hi: float | None = None,
    *,
    reached: bool = True,
    note: str = "",
    run_id: str = "r",
    estimates: bool = True,
) -> RunSummary:
    est = {"slo_capacity": Estimate(value=value, lo=lo, hi=hi, reached=reached, note=note, signal="p95_ms")}
    return RunSummary(
        run_id=run_id,
        results_dir="/x",
        experiment="e",
        target="t",
        slo_capacity_rps=value,
        capacity_interval=[lo, hi],
        estimates=est if estimates else {},
        recommendation={"app_tasks": 6 if value and value > 100 else 9},
    )


def test_big_drop_with_separate_intervals_is_a_regression() -> None:
    c = compare_runs(summary(120, 114, 126, run_id="a"), summary(90, 85, 95, run_id="b"), 10)
    assert c.verdict == "regression" and c.exit_code == 1
    main = c.figure("slo_capacity")
    assert main.change_pct == pytest.approx(-25.0) and main.overlap is False
    assert "-25.0%" in c.reason and "do not overlap" in c.reason
    assert c.recommendation == {"app_tasks": [6, 9]}
    assert c.to_dict()["figures"]["slo_capacity"]["candidate"]["value"] == 90


def test_equal_runs_pass() -> None:
    c = compare_runs(summary(120, 114, 126), summary(120, 114, 126), 10)
    assert (c.verdict, c.exit_code) == ("ok", 0)
    assert c.figure("slo_capacity").change_pct == pytest.approx(0.0)


def test_big_drop_within_overlapping_intervals_is_not_a_regression() -> None:
    c = compare_runs(summary(120, 80, 160), summary(95, 70, 130), 10)
    assert c.figure("slo_capacity").change_pct == pytest.approx(-20.83, abs=0.01)
    assert c.verdict == "ok" and "intervals overlap" in c.reason


def test_small_drop_with_separate_intervals_is_not_a_regression() -> None:
    c = compare_runs(summary(120, 119, 121), summary(112, 111, 113), 10)  # -6.7%, tight intervals
    assert c.verdict == "ok"
    assert compare_runs(summary(120, 119, 121), summary(112, 111, 113), 5).verdict == "regression"


def test_rise_past_threshold_is_an_improvement_and_exits_zero() -> None:
    c = compare_runs(summary(100, 95, 105), summary(150, 140, 160), 10)
    assert (c.verdict, c.exit_code) == ("improvement", 0)


def test_missing_intervals_fall_back_to_the_point_values() -> None:
    c = compare_runs(summary(100, estimates=False), summary(80, estimates=False), 10)
    assert c.verdict == "regression" and c.figure("slo_capacity").overlap is False


@pytest.mark.parametrize(
    ("base", "cand", "words"),
    [
        (summary(None, note="no stage passed"), summary(100, 95, 105), "baseline has no SLO capacity"),
        (summary(100, 95, 105), summary(300, reached=False), "candidate's SLO capacity was not reached"),
        (
            summary(100, 95, 105),
            summary(None, note="insufficient data: 1 usable stage(s)"),
            "insufficient data",
        ),
    ],
)
def test_undetermined_capacity_is_inconclusive(base: RunSummary, cand: RunSummary, words: str) -> None:
    c = compare_runs(base, cand, 10)
    assert (c.verdict, c.exit_code) == ("inconclusive", 3)
    assert words in c.reason


def test_negative_threshold_is_refused() -> None:
    with pytest.raises(ValueError, match="max_drop_pct"):
        compare_runs(summary(1), summary(1), -1)
