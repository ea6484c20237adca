"""Synthetic runs with known truth, for tests, benchmarks and notebooks (never used by a search).

A synthetic run is M/M/c servers driven by an open-model stage plan, shaped like what the runner
writes (stage table + per-second samples): offered ~ target, goodput = min(offered, c/s) with Poisson
noise, latency percentiles from M/M/c (Erlang C) below saturation and backlog-bound with 503s above
it. Two plan shapes: a geometric ramp stopping after the first failing stage or two, or
(``adaptive=True``) what the real runner produces with the adaptive strategy
(``capacity.plan.strategies.AdaptiveStrategy`` itself): ramp x growth to the first failure, then
bisection (with its goodput hint) below it to ``resolution``, failing stages aborted after
``abort_s`` measured seconds, and stages out of rate order. The truth is ``c / s``
(``SyntheticSpec.truth``), so an analysis of the run can be scored against it.

Aborted stages look as the runner records them (issue 13): short, ``aborted_early``, requests still
in flight at the abort counted as ``unfinished`` (in the error ratio), percentiles right-censored
(``percentiles_censored``: lower bounds, yet never below the window that failed the stage), and,
with ``abort_in_warmup``, stopped inside the warm-up with figures over the seconds it ran.
``degrade`` makes goodput sag under overload.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from capacity.analyze.queueing import sojourn_quantile
from capacity.plan.experiment import StagePlanSettings
from capacity.plan.strategies import AdaptiveStrategy, Probe


@dataclass(frozen=True)
class SyntheticSpec:
    servers: int = 8
    service_s: float = 0.05
    start_frac: float = 0.2
    growth: float = 1.4
    slo_p95_ms: float = 500.0
    noise: float = 0.02
    """Extra multiplicative noise (sd) on goodput and latency beyond Poisson counting noise."""
    measure_s: int = 15
    warmup_s: int = 5
    backlog: int = 64
    degrade: float = 0.0
    """Goodput lost per unit of overload above saturation (timeouts wasting work)."""
    extra_stages_after_fail: int = 1
    max_stages: int = 20
    pool_metric: bool = False
    invalid_stage: bool = False
    error_rate: float = 0.0
    adaptive: bool = False
    """Plan the stages with the runner's adaptive strategy (ramp, then bisection to ``resolution``)."""
    resolution: float = 0.05
    abort_s: int = 3
    """Adaptive runs: a stage that breaches a guard is aborted after this many measured seconds."""
    abort_failing: bool = False
    """Ramp runs too abort a stage that breaches a guard (adaptive runs always do)."""
    abort_in_warmup: bool = False
    """An aborted stage stops ``abort_s`` seconds into its warm-up (``aborted_in_warmup``)."""
    seed: int = 0

    @property
    def truth(self) -> float:
        return self.servers / self.service_s


def _latency_ms(spec: SyntheticSpec, lam: float) -> tuple[float, float, float]:
    sat = spec.truth
    if lam < 0.985 * sat:
        q = sojourn_quantile(
            np.array([0.5, 0.95, 0.99]), np.array(spec.servers), np.array(spec.service_s), np.array(lam)
        )
        cap = spec.backlog / sat + 3 * spec.service_s
        return tuple(min(float(v), cap) * 1000 for v in q)  # type: ignore[return-value]
    wait = spec.backlog / sat
    return (
        (wait + spec.service_s) * 1000,
        (wait * 1.3 + 3 * spec.service_s) * 1000,
        (wait * 1.6 + 5 * spec.service_s) * 1000,
    )


def synthetic_run(spec: SyntheticSpec) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(stages, seconds) for one run of the plan against the model."""
    rng = np.random.default_rng(spec.seed)
    rate = spec.start_frac * spec.truth
    stages: list[dict[str, Any]] = []
    seconds: list[dict[str, Any]] = []
    failed_after = None
    t0 = 1_800_000_000.0
    strategy = _adaptive(spec) if spec.adaptive else None
    probe: Probe | None = None
    for index in range(spec.max_stages):
        if strategy is not None:
            probe = strategy.next_stage()
            if probe is None:
                break
            rate = probe.rate
        stage = _SyntheticStage(spec, index, rate, aborts=strategy is not None or spec.abort_failing, rng=rng)
        seconds.extend(stage.second_rows(t0))
        t0 += stage.warmup_s + stage.measure_s
        row = stage.stage_row(probe.kind if probe is not None else "ramp", rng)
        stages.append(row)
        if strategy is not None:
            if not stage.invalid:
                strategy.record(rate, row["verdict"] == "pass", goodput=row["achieved_rps"])
            continue
        if row["verdict"] == "fail" and failed_after is None:
            failed_after = index
        if failed_after is not None and index - failed_after >= spec.extra_stages_after_fail:
            break
        rate *= spec.growth
    return pd.DataFrame(stages), pd.DataFrame(seconds)


class _SyntheticStage:
    """One stage of a synthetic run: its per-second counts and latencies, drawn once."""

    def __init__(self, spec: SyntheticSpec, index: int, rate: float, *, aborts: bool, rng: np.random.Generator):
        self.spec, self.index, self.rate = spec, index, rate
        self.invalid = spec.invalid_stage and index == 1
        sat = spec.truth
        self.lat = _latency_ms(spec, rate)
        breaches = rate >= 0.985 * sat or self.lat[1] > spec.slo_p95_ms
        self.aborted = aborts and breaches
        self.in_warmup = self.aborted and spec.abort_in_warmup and spec.warmup_s > 0
        self.warmup_s = min(spec.abort_s, spec.warmup_s) if self.in_warmup else spec.warmup_s
        self.measure_s = 0 if self.in_warmup else min(spec.abort_s, spec.measure_s) if self.aborted else spec.measure_s
        self.offered, self.served = self._counts(rng)
        self.errors = np.maximum(self.offered - self.served, 0)
        lat_noise = np.exp(rng.normal(0, max(spec.noise, 0.01) * 3, (self.seconds_counted, 3)))
        self.per_sec = np.array(self.lat)[None, :] * lat_noise
        # in flight at the abort: the backlog when saturated (among the requests not served), else
        # rate x latency by Little's law (requests that would have completed: taken from the ok ones)
        self.saturated = rate >= 0.985 * sat
        in_flight = min(spec.backlog, int(self.errors.sum())) if self.saturated else round(rate * self.lat[0] / 1000)
        self.unfinished = int(in_flight) if self.aborted else 0
        self.censor = float(rng.uniform(0.7, 1.0)) if self.unfinished else 1.0

    @property
    def seconds_counted(self) -> int:
        """The seconds the stage's figures cover: the measured ones, or the warm-up it was aborted in."""
        return self.warmup_s if self.in_warmup else self.measure_s

    def _counts(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """Requests offered and served each measured second."""
        spec, n = self.spec, self.seconds_counted
        sat = spec.truth
        offered = rng.poisson(self.rate, n).astype(float)
        if self.rate >= 0.985 * sat:  # saturated: a backlog queue served at the service rate; overflow gets 503
            over = max(0.0, self.rate / sat - 1.0)
            cap = sat * max(0.05, 1.0 - spec.degrade * over)
            capacity = rng.poisson(cap, n) * np.clip(1 + rng.normal(0, spec.noise, n), 0, 2)
            served = np.zeros(n)
            queue = float(spec.backlog)  # the warm-up filled it
            for j in range(n):
                queue += offered[j]
                served[j] = min(queue, round(capacity[j]))
                queue = min(queue - served[j], float(spec.backlog))
        else:
            served = offered.copy()
        served = np.round(served * (1 - spec.error_rate))
        if self.invalid:
            offered = offered * 0.6
            served = np.minimum(served, offered)
        return offered, served

    def second_rows(self, t0: float) -> list[dict[str, Any]]:
        """The per-second samples: warm-up seconds at the nominal rate, then the measured ones."""
        rows = []
        for k in range(self.warmup_s + self.measure_s):
            measure = k >= self.warmup_s
            j = k - self.warmup_s
            if self.in_warmup:  # the seconds the stage's figures cover are its warm-up ones
                measure, j = True, k
            rows.append(
                {
                    "stage": self.index,
                    "t": t0 + k,
                    "phase": "measure" if measure and not self.in_warmup else "warmup",
                    "target_rps": self.rate,
                    "offered": int(self.offered[j]) if measure else int(self.rate),
                    "ok": int(self.served[j]) if measure else int(self.rate),
                    "errors": int(self.errors[j]) if measure else 0,
                    "dropped": 0,
                    "inflight": 0,
                    "p50_ms": float(self.per_sec[j, 0]) if measure else self.lat[0],
                    "p95_ms": float(self.per_sec[j, 1]) if measure else self.lat[1],
                    "p99_ms": float(self.per_sec[j, 2]) if measure else self.lat[2],
                    "max_ms": None,
                    "generator_cpu_pct": 95.0 if self.invalid else 20.0,
                    "workers": 1,
                }
            )
        return rows

    def stage_row(self, probe: str, rng: np.random.Generator) -> dict[str, Any]:
        """The stage table row, judged by the same guards a search applies (p95, goodput, errors)."""
        spec, sat = self.spec, self.spec.truth
        unf = self.unfinished  # not completed: out of the unserved requests when saturated, else the ok ones
        errors, ok = int(self.errors.sum()), int(self.served.sum())
        errors, ok = (errors - unf, ok) if self.saturated else (errors, ok - unf)
        requests = int(self.offered.sum())
        offered_rps = float(self.offered.mean())
        achieved = ok / max(self.seconds_counted, 1)
        err_ratio = (errors + unf) / max(requests, 1)
        p50, p95, p99 = (float(np.mean(self.per_sec[:, i])) for i in range(3))
        reasons = []
        if p95 > spec.slo_p95_ms:
            reasons.append("p95")
        if achieved < 0.95 * offered_rps:
            reasons.append("goodput")
        if err_ratio > 0.01:
            reasons.append("errors")
        if self.censor < 1.0:  # waits cut short by the abort: lower bounds, never below the failing window
            floor = min(p95, 1.01 * spec.slo_p95_ms) if "p95" in reasons else 0.0
            p50, p95, p99 = p50 * self.censor, max(p95 * self.censor, floor), max(p99 * self.censor, floor)
        row: dict[str, Any] = {
            "index": self.index,
            "target_rps": self.rate,
            "offered_rps": offered_rps,
            "achieved_rps": achieved,
            "dropped": 0,
            "p50_ms": p50,
            "p95_ms": p95,
            "p99_ms": p99,
            "error_ratio": err_ratio,
            "verdict": "invalid: generator" if self.invalid else ("fail" if reasons else "pass"),
            "reasons": "; ".join(reasons),
            "probe": probe,
            "duration_s": float(self.measure_s + self.warmup_s),
            "requests": requests,
            "ok": ok,
            "errors": errors,
            "unfinished": unf,
            "aborted_early": self.aborted,
            "aborted_in_warmup": self.in_warmup,
            "percentiles_censored": self.censor < 1.0,
            "m_cpu_pct": float(min(100.0, 100 * 0.3 * min(self.rate, sat) / sat + rng.normal(0, 2))),
        }
        if spec.pool_metric:
            busy = 100 * min(self.rate, sat) / sat * (1 + rng.normal(0, spec.noise))
            row["m_pool_busy_pct"] = float(min(100.0, busy))
        return row


def _adaptive(spec: SyntheticSpec) -> AdaptiveStrategy:
    settings = StagePlanSettings(  # type: ignore[call-arg]
        strategy="adaptive",
        start_rps=spec.start_frac * spec.truth,
        max_rps=spec.truth * 10,
        growth=spec.growth,
        resolution=spec.resolution,
        max_stages=spec.max_stages,
    )
    return AdaptiveStrategy(settings)


def random_spec(rng: np.random.Generator, seed: int, *, adaptive: bool = False) -> SyntheticSpec:
    """A varied spec: servers, service time, noise, plan shape and SLO all drawn at random.

    ``adaptive`` plans the stages as the runner's adaptive search does (ramp, first failure, bisection
    to 5%) instead of a ramp that stops after the first failure; the random draws are the same.
    """
    servers = int(rng.choice([1, 2, 4, 6, 8, 12, 16, 24, 32, 48, 64]))
    truth = float(rng.uniform(40, 500))
    service_s = servers / truth
    unloaded_p95 = float(sojourn_quantile(0.95, np.array(servers), np.array(service_s), np.array(1e-6))) * 1000
    return SyntheticSpec(
        servers=servers,
        service_s=service_s,
        start_frac=float(rng.uniform(0.05, 0.4)),
        growth=float(rng.uniform(1.15, 1.7)),
        slo_p95_ms=unloaded_p95 * float(rng.uniform(2.0, 12.0)),
        noise=float(rng.uniform(0.0, 0.03)),
        backlog=int(rng.integers(16, 256)),
        degrade=float(rng.choice([0.0, 0.0, 0.05, 0.15])),
        extra_stages_after_fail=int(rng.integers(0, 2)),
        pool_metric=bool(rng.random() < 0.3),
        invalid_stage=bool(rng.random() < 0.15),
        adaptive=adaptive,
        seed=seed,
    )
