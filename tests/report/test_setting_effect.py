"""Two runs that differ in a setting: did the knee move, and is the changed setting the bottleneck?"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from capacity.core.models import Bottleneck, Estimate, RunSummary
from capacity.report.setting_effect import changed_settings, setting_effect
from tests.conftest import Cli


def run(knee: float | None, lo: float, hi: float, resource: str | None = "db_pool", **est: Estimate) -> RunSummary:
    estimates = {"knee": Estimate(value=knee, lo=lo, hi=hi, signal="p95_ms"), **est}
    return RunSummary(
        run_id="r",
        results_dir="/x",
        experiment="e",
        target="t",
        knee_rps=knee,
        estimates=estimates,
        bottleneck=Bottleneck(resource=resource, evidence="e", stage=3) if resource else None,  # type: ignore[arg-type]
    )


THREADS_5 = {"sandbox": {"threads": 5, "db_pool": 5, "stack": "rails"}, "stages": {"start_rps": 10}}
THREADS_10 = {"sandbox": {"threads": 10, "db_pool": 5, "stack": "rails"}, "stages": {"start_rps": 20}}


def test_only_the_system_under_test_settings_count() -> None:
    assert changed_settings(THREADS_5, THREADS_10) == {"sandbox.threads": [5, 10]}
    assert changed_settings(THREADS_5, THREADS_5) == {}
    newer = {"sandbox": {**THREADS_5["sandbox"], "tag_cardinality": "orchestrator"}}
    assert changed_settings(THREADS_5, newer) == {}  # a key one run lacks is a newer default, not a change


def test_a_knee_that_stays_with_the_same_bottleneck_says_the_setting_is_not_it() -> None:
    e = setting_effect(THREADS_5, THREADS_10, run(100, 95, 105), run(103, 97, 108))
    assert e is not None and e.moved is False and e.figure == "knee"
    assert "threads 5 -> 10" in e.text and "did not move" in e.text
    assert "limited by db_pool, so the changed setting is not the bottleneck" in e.text


def test_a_knee_that_moves_past_noise_and_resolution_is_said_to_move() -> None:
    e = setting_effect(THREADS_5, THREADS_10, run(100, 95, 105, "puma_threads"), run(180, 170, 190, "db_pool"))
    assert e is not None and e.moved is True
    assert "moved +80.0%" in e.text and "bottleneck puma_threads -> db_pool" in e.text


def test_a_small_change_with_overlapping_intervals_is_noise_and_a_lower_bound_is_not_used() -> None:
    # +6% but the intervals overlap: within noise
    e = setting_effect(THREADS_5, THREADS_10, run(100, 90, 112), run(106, 96, 116))
    assert e is not None and e.moved is False
    # a knee not reached in one run: the next figure both determined is used (here none)
    unreached = run(None, 0, 0)
    unreached.estimates["knee"] = Estimate(value=150, reached=False)
    e = setting_effect(THREADS_5, THREADS_10, run(100, 95, 105), unreached)
    assert e is not None and e.moved is None and "no capacity figure both runs determined" in e.text


def test_no_changed_setting_gives_nothing() -> None:
    assert setting_effect(THREADS_5, THREADS_5, run(100, 95, 105), run(60, 55, 65)) is None


def test_results_compare_prints_the_setting_effect(
    tmp_path: Path, synthetic_run: Callable[..., Path], cli: Cli
) -> None:
    root = tmp_path / "results"
    a = synthetic_run(root, 120.0, run_id="20261126T030000Z-a-aaaa")
    b = synthetic_run(root, 121.0, run_id="20261126T040000Z-b-bbbb")
    manifest = json.loads((b / "manifest.json").read_text())
    before = json.loads((a / "manifest.json").read_text())["experiment"]["cluster"]["app_tasks"]
    manifest["experiment"]["cluster"]["app_tasks"] = before + 2
    (b / "manifest.json").write_text(json.dumps(manifest))
    res = cli("results", "compare", str(a), str(b), "--json")
    effect = json.loads(res.stdout)["setting_effect"]
    assert effect["changed"] == {"cluster.app_tasks": [before, before + 2]}
    assert f"app_tasks {before} -> {before + 2}" in effect["text"]
