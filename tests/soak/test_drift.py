"""Drift fits: slopes with intervals that contain the truth, flat when nothing grows, hours to a limit."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from capacity.analyze.drift import DRIFTS, MIB, SoakInputs, fit_slope, judge, soak_drift
from capacity.plan.soak import SoakSettings

THRESHOLDS = SoakSettings().thresholds()


def _seconds(n: int, *, p95_slope_per_s: float = 0.0, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    t = 1_000_000.0 + np.arange(n)
    return pd.DataFrame(
        {
            "t": t,
            "phase": ["warmup"] * 5 + ["measure"] * (n - 5),
            "ok": rng.poisson(40, n),
            "errors": np.zeros(n, dtype=int),
            "p95_ms": 80 + p95_slope_per_s * (t - t[0]) + rng.normal(0, 5, n),
        }
    )


def _metrics(t: np.ndarray, mib_per_s: float, *, tasks: int = 2, seed: int = 2) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for k in range(tasks):
        base = (100 + 30 * k) * MIB
        mem = base + mib_per_s * MIB * (t - t[0]) + rng.normal(0, 0.3 * MIB, len(t))
        rows += [("mem_usage", f"task_arn:{k}", ti, v) for ti, v in zip(t, mem, strict=True)]
        rows += [("mem_limit", f"task_arn:{k}", ti, 512 * MIB) for ti in t]
    rows += [("queue_size", "queue:default", ti, float(rng.poisson(2))) for ti in t]
    return pd.DataFrame(rows, columns=["metric", "group", "t", "value"]).assign(stage=0)


def test_slope_interval_contains_the_truth() -> None:
    rng = np.random.default_rng(5)
    t = np.arange(0.0, 600.0)
    fit = fit_slope(t, 3.0 + 0.01 * t + rng.normal(0, 0.5, t.size))
    assert fit.value == pytest.approx(36.0, rel=0.1)
    assert fit.lo is not None and fit.hi is not None and fit.lo < 36.0 < fit.hi
    assert fit.level_end == pytest.approx(3.0 + 0.01 * 599, abs=0.5)


def test_pooled_slope_ignores_offsets_between_tasks() -> None:
    t = np.tile(np.arange(0.0, 100.0), 2)
    g = np.repeat(["a", "b"], 100)
    y = np.where(g == "a", 0.0, 500.0) + 0.1 * t
    assert fit_slope(t, y, g).value == pytest.approx(360.0)


def test_leaking_soak_is_growing_with_time_to_limit() -> None:
    sec = _seconds(200)
    drift = soak_drift(sec, _metrics(sec["t"].to_numpy(), 0.2), SoakInputs(THRESHOLDS, slo_p95_ms=250))
    mem = drift.drifts["mem_mib_per_hour"]
    assert mem.verdict == "growing" and mem.fit.value == pytest.approx(720, rel=0.05)
    # the higher task starts at 130 MiB and gains ~39 MiB by the end: (512 - 169) / 720 h
    assert mem.hours_to_limit == pytest.approx((512 - 130 - 0.2 * 199) / 720, rel=0.05)
    assert drift.verdict == "fail" and drift.reasons[0].startswith("mem_mib_per_hour")
    per_k = drift.detail["mem_mib_per_1000_requests"]["value"]
    assert per_k == pytest.approx(720 / (40 * 3600 / 2) * 1000, rel=0.05)
    out = drift.contract()
    assert list(out) == ["drift", "time_to_limit_h", "verdict"] and list(out["drift"]) == list(DRIFTS)
    assert set(out["drift"]["mem_mib_per_hour"]) == {"value", "lo", "hi", "verdict"}
    assert set(out["time_to_limit_h"]) == {"mem_mib_per_hour", "p95_ms_per_hour"}  # limits known here


def test_steady_soak_is_flat_and_passes() -> None:
    sec = _seconds(200)
    drift = soak_drift(sec, _metrics(sec["t"].to_numpy(), 0.0), SoakInputs(THRESHOLDS, slo_p95_ms=250))
    assert {name: d.verdict for name, d in drift.drifts.items()} == dict.fromkeys(DRIFTS, "flat")
    assert drift.verdict == "pass" and drift.contract()["time_to_limit_h"]["mem_mib_per_hour"] is None


def test_latency_drift_and_min_hours_rule() -> None:
    sec = _seconds(300, p95_slope_per_s=0.05)  # 180 ms/hour
    inputs = SoakInputs(THRESHOLDS, slo_p95_ms=250, min_hours_to_limit=24)
    drift = soak_drift(sec, pd.DataFrame(columns=["stage", "metric", "group", "t", "value"]), inputs)
    p95 = drift.drifts["p95_ms_per_hour"]
    assert p95.verdict == "growing" and p95.fit.value == pytest.approx(180, rel=0.15)
    assert p95.hours_to_limit is not None and p95.hours_to_limit < 1.0
    assert any("reaches its limit" in r for r in drift.reasons)
    assert drift.drifts["mem_mib_per_hour"].fit.value is None  # no memory series: nothing to fit


def test_small_slope_below_threshold_is_flat() -> None:
    t = np.arange(0.0, 400.0)
    fit = fit_slope(t, 100 + 0.001 * t)  # 3.6 per hour, exactly
    assert fit.lo is not None and fit.lo > 0
    assert judge(fit, 10.0).verdict == "flat" and judge(fit, 1.0).verdict == "growing"
