"""Sizing from the scaling curve: the USL recovered from its own points, 2-size conservatism, the peak refusal."""

from __future__ import annotations

import json

import pytest

from capacity.core.errors import CapacityError
from capacity.plan.experiment import Production
from capacity.sandbox import SandboxConfig, truth
from capacity.sandbox.contention import usl_rps
from capacity.size.curve import SizePoint, curve_tasks, fit_curve, leave_one_out, size_from_curve
from tests.conftest import Cli

LAM, SIGMA, KAPPA = 100.0, 0.25, 0.08
PROD = Production(zones=1, n_plus_one=False, min_tasks=1, throughput_headroom=0.0)


def points(sizes: list[int], rel: float = 0.01) -> list[SizePoint]:
    out = []
    for n in sizes:
        x = usl_rps(n, LAM, SIGMA, KAPPA)
        out.append(SizePoint(n, x, x * (1 - rel), x * (1 + rel)))
    return out


def test_usl_fit_recovers_the_parameters_with_intervals_that_contain_them() -> None:
    fit = fit_curve(points([1, 2, 4]))
    assert fit.model == "usl"
    assert fit.sigma == pytest.approx(SIGMA, rel=0.01)
    assert fit.kappa == pytest.approx(KAPPA, rel=0.01)
    assert fit.lam == pytest.approx(LAM, rel=0.01)
    for name, true in (("sigma", SIGMA), ("kappa", KAPPA), ("lambda", LAM)):
        lo, hi = fit.intervals[name]
        assert lo <= true <= hi, (name, lo, hi)
    assert fit.peak_tasks == pytest.approx(((1 - SIGMA) / KAPPA) ** 0.5, rel=0.02)
    lo, hi = fit.intervals["peak_tasks"]
    assert lo < fit.peak_tasks < hi


def test_two_sizes_take_the_most_conservative_linear_with_contention_model() -> None:
    pts = points([1, 2], rel=0.02)
    fit = fit_curve(pts)
    assert fit.model.startswith("amdahl") and fit.kappa == 0.0
    # the conservative corner: 1 task at its top, 2 at their bottom -> the largest sigma the intervals allow
    top, bottom = pts[0].hi, pts[1].lo
    assert top is not None and bottom is not None
    assert fit.rps_at(1) == pytest.approx(top)
    assert fit.rps_at(2) == pytest.approx(bottom)
    assert fit.sigma == pytest.approx(fit.intervals["sigma"][1])
    assert fit.sigma > SIGMA + 2 * KAPPA - 0.01  # at least the true combined slowdown at 2 tasks


def test_one_size_is_the_line_and_replicates_pool_into_its_interval() -> None:
    fit = fit_curve([SizePoint(2, 160.0)])
    assert fit.model == "linear" and fit.rps_at(4) == pytest.approx(320.0)
    pooled = fit_curve([SizePoint(2, 160.0), SizePoint(2, 150.0)])  # two replicates of one size: their mean
    assert pooled.rps_at(2) == pytest.approx(155.0)
    lams = sorted(a[2] for a in pooled.alternatives)  # run-to-run spread: t(1) x sd / sqrt(2) = 63.5 req/s
    assert lams[0] * 2 < 155.0 - 60 and lams[1] * 2 > 155.0 + 60
    with pytest.raises(CapacityError, match="no size"):
        fit_curve([])


def test_three_sizes_are_exact_and_uncheckable_four_give_leave_one_out_errors() -> None:
    three = fit_curve(points([1, 2, 4]))
    assert any("exact and uncheckable" in n for n in three.notes) and leave_one_out(points([1, 2, 4])) == []
    pts = points([1, 2, 3, 4])
    assert not any("exact" in n for n in fit_curve(pts).notes)
    loo = leave_one_out(pts)
    assert [r["app_tasks"] for r in loo] == [1, 2, 3, 4]
    assert all(abs(r["error_pct"]) < 1.0 for r in loo)  # the points lie on a USL: each is predicted closely
    bent = [*pts[:2], SizePoint(3, pts[2].capacity_rps * 1.3), pts[3]]  # a size 30% off the curve shows
    assert max(abs(r["error_pct"]) for r in leave_one_out(bent)) > 10.0


def test_production_read_off_the_curve_beside_the_line() -> None:
    fit = fit_curve(points([1, 2, 4]))
    # need 145 req/s (no headroom): the line from 1 task says 2; the curve 3 (X(2) = 141.8 < 145)
    sizing = size_from_curve(fit, points([1, 2, 4]), demand_rps=145.0, production=PROD, staging_tasks=1)
    assert sizing.app_tasks_linear == 2
    assert sizing.app_tasks_curve == 3
    assert sizing.binding == "curve"
    assert sizing.refused is None


def test_beyond_the_peak_is_refused_with_the_reason() -> None:
    fit = fit_curve(points([1, 2, 4]))
    sizing = size_from_curve(fit, points([1, 2, 4]), demand_rps=200.0, production=PROD, staging_tasks=1)
    assert sizing.app_tasks_curve is None and sizing.binding == "curve (refused)"
    assert sizing.refused is not None and "peaks at" in sizing.refused and "lowers throughput" in sizing.refused
    # rounding past the peak is refused too when the rounded size carries less than is needed
    _, answer, why = curve_tasks(fit.rps_at, fit.peak_tasks, 151.0, Production(zones=2, n_plus_one=True, min_tasks=1))
    assert answer is None and why is not None and "beyond the curve's peak" in why


def test_sandbox_truth_is_the_usl_by_formula() -> None:
    cfg = SandboxConfig(app_tasks=2, threads=4, service_ms=40.0, contention_sigma=SIGMA, crosstalk_kappa=KAPPA)
    t = truth(cfg)
    facts = t.as_dict()
    assert facts["usl"]["sigma"] == SIGMA and facts["usl"]["kappa"] == KAPPA
    assert facts["usl"]["lambda"] == pytest.approx(LAM)
    for n, rps in facts["by_app_tasks"].items():
        assert rps == pytest.approx(usl_rps(int(n), LAM, SIGMA, KAPPA), rel=1e-6)
    assert facts["pool_rps"] == pytest.approx(usl_rps(2, LAM, SIGMA, KAPPA))
    assert "slowdown" in facts["formula"]["pool_rps"]


def test_sandbox_explain_json_gives_the_curve_and_the_true_usl(cli: Cli) -> None:
    proc = cli(
        "sandbox", "--explain", "--json", "--app-tasks", "1", "--threads", "4", "--service-ms", "40",
        "--contention-sigma", "0.25", "--crosstalk-kappa", "0.08",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    facts = json.loads(proc.stdout)
    assert facts["usl"]["sigma"] == SIGMA and facts["usl"]["kappa"] == KAPPA
    assert facts["usl"]["lambda"] == pytest.approx(LAM)
    assert list(facts["by_app_tasks"])[:4] == ["1", "2", "3", "4"]
    assert facts["by_app_tasks"]["4"] == pytest.approx(usl_rps(4, LAM, SIGMA, KAPPA), rel=1e-4)
    text = cli("sandbox", "--explain", "--contention-sigma", "0.25", "--crosstalk-kappa", "0.08")
    assert "scaling (USL)" in text.stdout and "capacity by app tasks" in text.stdout
