"""``capacity soak``'s input: durations, where the rate comes from, and one line with exit 2 when bad."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from capacity.core.errors import CapacityError, ExperimentError
from capacity.search.soak_plan import SoakPlan, parse_duration, soak_rate
from tests.conftest import Cli
from tests.helpers import make_experiment


@pytest.mark.parametrize(("text", "seconds"), [("90s", 90), ("30m", 1800), ("2h", 7200), ("1.5h", 5400)])
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["90", "2d", "0s", "-5m", "h"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ExperimentError, match="--duration"):
        parse_duration(text)


def test_rate_from_flag_profile_and_recommendation(tmp_path: Path) -> None:
    exp = make_experiment(builtin=True)
    assert soak_rate(exp, rps=40, at=None, from_run=None) == (40, "--rps 40")
    rate, why = soak_rate(exp, rps=None, at="1x", from_run=None)
    assert rate is not None and rate == pytest.approx((7839 + 588 + 588) / 60) and "profile" in why
    assert soak_rate(exp, rps=None, at="2x", from_run=None)[0] == pytest.approx(2 * rate)
    run = tmp_path / "run"
    run.mkdir()
    (run / "manifest.json").write_text(json.dumps({"run_id": "r1"}))
    summary = {"run_id": "r1", "results_dir": str(run), "experiment": "x", "target": "t"}
    rec = {"app_tasks": 6, "peak_rps": 150.0, "inputs": {"growth": 1.2}}
    (run / "summary.json").write_text(json.dumps({**summary, "recommendation": rec}))
    rate, why = soak_rate(exp, rps=None, at="recommended", from_run=run)
    assert rate == pytest.approx(150 * 1.2 * 2 / 6) and "r1" in why  # staging has 2 app tasks
    # the rule set's demand (unmodelled share included) per recommended task, on staging's tasks
    rec = {"app_tasks": 6, "peak_rps": 150.0, "inputs": {"growth": 1.0}, "figures": {"demand_rps": 180.0}}
    (run / "summary.json").write_text(json.dumps({**summary, "recommendation": rec}))
    rate, why = soak_rate(exp, rps=None, at="recommended", from_run=run)
    assert rate == pytest.approx(180.0 * 2 / 6) and "demand 180" in why
    (run / "summary.json").write_text(json.dumps(summary))
    with pytest.raises(CapacityError, match="no recommendation"):
        soak_rate(exp, rps=None, at="recommended", from_run=run)


@pytest.mark.parametrize(
    ("rps", "at"), [(None, None), (10.0, "1x"), (-1.0, None), (None, "fast"), (None, "recommended")]
)
def test_bad_rate_choices(rps: float | None, at: str | None) -> None:
    with pytest.raises(ExperimentError):
        soak_rate(make_experiment(builtin=True), rps=rps, at=at, from_run=None)


def test_segments_cover_the_soak() -> None:
    exp = make_experiment(builtin=True).with_changes(soak={"segment_seconds": 25})
    segs = SoakPlan(40.0, 60.0, "--rps 40").segments(exp)
    assert [(s.start_s, s.end_s) for s in segs] == [(0, 25), (25, 50), (50, 60)]
    assert all(s.peak_rps == 40.0 for s in segs)


def test_bad_input_is_one_line_and_exit_2(tmp_path: Path, cli: Cli) -> None:
    cp = cli("soak", "--rps", "10", "--duration", "5 minutes", "--out", str(tmp_path))
    assert cp.returncode == 2 and cp.stderr.strip().count("\n") == 0 and "--duration" in cp.stderr
    cp = cli("soak", "--duration", "90s", "--out", str(tmp_path))
    assert cp.returncode == 2 and "--rps" in cp.stderr
    assert not list(tmp_path.iterdir())
