"""The documented capacity formula, the parameter checks and the service-time distributions."""

from __future__ import annotations

import random
import statistics

import pytest

from capacity.core.errors import CapacityError
from capacity.sandbox import SandboxConfig, default_mix, truth
from capacity.sandbox.service import draw_slot_ms


def test_pool_formula_default_is_160_rps() -> None:
    t = truth(SandboxConfig(app_tasks=2, threads=4, service_ms=50))
    assert t.pool_rps == pytest.approx(160.0)
    assert t.mean_service_ms == pytest.approx(50.0)
    assert t.saturation_rps == pytest.approx(160.0)


def test_queue_formulas_follow_the_seed_mix() -> None:
    t = truth(SandboxConfig(sidekiq_tasks=2, sidekiq_concurrency=5, job_ms=200))
    assert t.queue_jobs_per_s == pytest.approx(50.0)
    share = 588 / (7839 + 588 + 588)
    assert t.jobs_per_request == pytest.approx(share)
    assert t.queue_bound_rps == pytest.approx(50.0 / share)
    assert t.bottleneck == "pool"  # 160 < 690
    slow = truth(SandboxConfig(sidekiq_tasks=1, sidekiq_concurrency=1, job_ms=1000))
    assert slow.queue_bound_rps == pytest.approx(1 / share)
    assert slow.bottleneck == "queue"


def test_mix_weighted_mean_with_per_endpoint_times() -> None:
    cfg = SandboxConfig(service_ms=50, endpoint_ms=(("appointment_summary", 150.0),))
    mix = default_mix()
    expected = 50 * (1 - mix["appointment_summary"]) + 150 * mix["appointment_summary"]
    t = truth(cfg)
    assert t.mean_service_ms == pytest.approx(expected)
    assert t.pool_rps == pytest.approx(8 / (expected / 1000))
    assert sum(t.mix.values()) == pytest.approx(1.0)
    d = t.as_dict()
    assert d["pool_rps"] == pytest.approx(t.pool_rps) and d["parameters"]["endpoint_ms"]["appointment_summary"] == 150


def test_no_workers_means_queue_always_grows() -> None:
    t = truth(SandboxConfig(sidekiq_tasks=0))
    assert t.queue_jobs_per_s == 0 and t.queue_bound_rps == 0
    assert truth(SandboxConfig(), mix={"get_demographics_status": 1}).as_dict()["queue_bound_rps"] is None


@pytest.mark.parametrize(
    ("kwargs", "flag"),
    [
        ({"threads": 0}, "--threads"),
        ({"app_tasks": 0}, "--app-tasks"),
        ({"backlog": -1}, "--backlog"),
        ({"service_ms": 0}, "--service-ms"),
        ({"cpu_ms": 60}, "--cpu-ms"),
        ({"error_rate": 1.5}, "--error-rate"),
        ({"service_dist": "normal"}, "--service-dist"),
        ({"endpoint_ms": (("nope", 1.0),)}, "--endpoint-ms"),
        ({"job_ms": 0}, "--job-ms"),
        ({"records": 0}, "--records"),
    ],
)
def test_bad_values_name_the_flag(kwargs: dict[str, object], flag: str) -> None:
    with pytest.raises(CapacityError, match=flag):
        SandboxConfig(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize("dist", ["const", "exp", "lognormal"])
def test_slot_time_has_the_stated_mean(dist: str) -> None:
    rng = random.Random(3)
    draws = [sum(draw_slot_ms(rng, dist, 50.0, 0.5)) for _ in range(40_000)]
    assert statistics.fmean(draws) == pytest.approx(50.0, rel=0.02)
    cv = statistics.pstdev(draws) / statistics.fmean(draws)
    expected_cv = {"const": 0.0, "exp": 0.99, "lognormal": 0.53}[dist]
    assert cv == pytest.approx(expected_cv, abs=0.05)
