"""Issue 7 end to end: two real sandbox runs of different capacity; ``results compare`` and ``nightly`` flag
the regression with exit 1 and pass with exit 0 against an equal baseline.

Baseline: 2 app tasks x 4 threads / 50 ms = 160 req/s; candidate: 2 x 3 threads = 120 req/s (-25%, beyond the
10% threshold). The linear plan (80, 130, 180 req/s) puts no stage within 8% of either truth, so each run
has passing stages and a clearly failing one: its SLO capacity is *reached* (an unreached one would make the
gate inconclusive, exit 3), and a repeat of the baseline lands on the same stages.
"""

from __future__ import annotations

import json
import subprocess
import threading
from pathlib import Path

import pytest

from capacity.plan.experiment import builtin_experiment_path, load_experiment
from capacity.sandbox import SandboxConfig, truth
from tests.conftest import run_cli

PLAN = {
    'strategy = "adaptive"': 'strategy = "linear"',
    "start_rps = 25": "start_rps = 80\nstep_rps = 50",
    "max_rps = 400": "max_rps = 300",
    "stage_seconds = 12": "stage_seconds = 4",
    "warmup_seconds = 3": "warmup_seconds = 1",
    "max_duration_s = 170": "max_duration_s = 60",
}


def _experiment_file(tmp: Path, name: str, threads: int) -> Path:
    text = builtin_experiment_path().read_text(encoding="utf-8")
    for old, new in {
        **PLAN,
        "threads = 4": f"threads = {threads}",
        "puma_threads = 4": f"puma_threads = {threads}",
    }.items():
        assert old in text, old
        text = text.replace(old, new, 1)
    path = tmp / f"{name}.toml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.slow
def test_compare_and_nightly_flag_a_lower_capacity_and_pass_an_equal_one(tmp_path: Path) -> None:
    root = tmp_path / "results"
    base_toml = _experiment_file(tmp_path, "baseline", threads=4)
    cand_toml = _experiment_file(tmp_path, "candidate", threads=3)
    truths = {
        p.stem: truth(SandboxConfig.from_settings(load_experiment(p).sandbox)).pool_rps for p in (base_toml, cand_toml)
    }
    assert truths == pytest.approx({"baseline": 160.0, "candidate": 120.0})

    done = run_cli("search", str(base_toml), "--out", str(root), "--json", timeout=90)
    assert done.returncode == 0, done.stderr[-2000:]
    baseline = json.loads(done.stdout)
    assert baseline["estimates"]["slo_capacity"]["reached"], baseline["stopped_reason"]
    # linear interpolation to the first breach errs low: between the last pass (130) and the first fail (180)
    assert 130.0 <= baseline["slo_capacity_rps"] <= 180.0

    # the two nightlies against the baseline are independent: they run side by side (each its own sandbox,
    # 80-180 req/s of 50-ms requests that wait)
    nights: dict[str, subprocess.CompletedProcess[str]] = {}

    def nightly(name: str, toml: Path) -> None:
        args = ("nightly", str(toml), "--baseline", baseline["results_dir"], "--results", str(root / name), "--json")
        nights[name] = run_cli(*args)

    threads = [
        threading.Thread(target=nightly, args=a, daemon=True) for a in (("cand", cand_toml), ("same", base_toml))
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(150)

    # the lower-capacity experiment against the baseline: a regression, exit 1
    night = nights["cand"]
    assert night.returncode == 1, (night.stdout[-2000:], night.stderr[-2000:])
    outcome = json.loads(night.stdout)
    assert outcome["verdict"] == "regression"
    slo = outcome["comparison"]["figures"]["slo_capacity"]
    assert 80.0 <= slo["candidate"]["value"] <= 130.0  # last pass 80, first fail 130 (truth 120)
    assert slo["change_pct"] < -10 and slo["intervals_overlap"] is False
    candidate_dir = outcome["run_dir"]

    # the same two runs through `results compare`: exit 1
    cmp = run_cli("results", "compare", baseline["results_dir"], candidate_dir)
    assert cmp.returncode == 1, (cmp.stdout[-2000:], cmp.stderr[-2000:])
    assert "regression" in cmp.stdout.lower()

    # the baseline experiment again: equal capacity, exit 0
    same = nights["same"]
    assert same.returncode == 0, (same.stdout[-2000:], same.stderr[-2000:])
    again = json.loads(same.stdout)
    assert again["verdict"] in ("ok", "improvement")
    assert abs(again["comparison"]["figures"]["slo_capacity"]["change_pct"]) < 10
