"""Guards: the rules that judge a stage, over a sliding window while it runs and over the whole stage.

A breach during a stage stops that stage at once (the search must not keep hurting a shared staging
cluster), so the window rules are written to be *sustained* rather than single-second blips. The
whole-stage rules use the exact histogram of the measured part.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from capacity.models import SecondSample
from capacity.plan.experiment import Guards

MIN_WINDOW_REQUESTS = 20
"""Ratios over fewer requests than this are noise at low rates; such windows are not judged."""


@dataclass(frozen=True)
class Breach:
    """One broken rule: ``code`` is stable (``stopped_reason`` is ``guard:<code>``), ``text`` is for people."""

    code: str
    text: str

    @property
    def generator(self) -> bool:
        """True when the load generator, not the target, broke the rule (the stage is invalid)."""
        return self.code == "generator"


def _ratio(num: float, den: float) -> float:
    return num / den if den > 0 else 0.0


def judge_window(samples: Sequence[SecondSample], guards: Guards, *, skip_first_s: int = 2) -> list[Breach]:
    """Rules over the last ``guards.window_seconds`` seconds of a running stage.

    The first seconds of a stage are skipped: responses lag arrivals and the window would read a
    goodput shortfall that is only the stage starting.
    """
    w = guards.window_seconds
    usable = [s for i, s in enumerate(samples) if i >= skip_first_s]
    if len(usable) < w:
        return []
    win = usable[-w:]
    offered = sum(s.offered for s in win)
    ok = sum(s.ok for s in win)
    errors = sum(s.errors for s in win)
    dropped = sum(s.dropped for s in win)
    completed = ok + errors
    breaches: list[Breach] = []

    cpus = [s.generator_cpu_pct for s in win if s.generator_cpu_pct is not None]
    if cpus and min(cpus) > guards.max_generator_cpu_pct:
        breaches.append(
            Breach(
                "generator",
                f"load generator CPU {min(cpus):.0f}% > {guards.max_generator_cpu_pct:.0f}% "
                f"for {w} s: add workers (--workers)",
            )
        )
    if completed >= MIN_WINDOW_REQUESTS and _ratio(errors, completed) > guards.max_error_ratio:
        breaches.append(
            Breach(
                "errors",
                f"error ratio {_ratio(errors, completed):.1%} > {guards.max_error_ratio:.1%} over the last {w} s",
            )
        )
    for q, slo in (("p95", guards.slo_p95_ms), ("p99", guards.slo_p99_ms)):
        if slo is None:
            continue
        values = [getattr(s, f"{q}_ms") for s in win]
        if all(v is not None and v > slo for v in values):
            low = min(v for v in values if v is not None)
            breaches.append(Breach(q, f"{q} over SLO {slo:g} ms for {w} s (lowest {low:.0f} ms)"))
    arrivals = offered + dropped
    if arrivals >= MIN_WINDOW_REQUESTS and _ratio(dropped, arrivals) > guards.max_dropped_ratio:
        breaches.append(
            Breach("dropped", f"{_ratio(dropped, arrivals):.1%} of arrivals dropped (no free slot) over the last {w} s")
        )
    if offered >= MIN_WINDOW_REQUESTS and _ratio(ok, offered) < guards.min_goodput_ratio:
        breaches.append(
            Breach(
                "goodput",
                f"goodput {ok / w:.1f}/s is {_ratio(ok, offered):.0%} of offered "
                f"{offered / w:.1f}/s < {guards.min_goodput_ratio:.0%}",
            )
        )
    return breaches


@dataclass(frozen=True)
class StageTotals:
    """What the whole-stage rules need, taken from the measured part of a stage."""

    target_rps: float
    offered_rps: float
    achieved_rps: float
    requests: int
    ok: int
    errors: int
    dropped: int
    p95_ms: float | None
    p99_ms: float | None
    generator_cpu_pct: float | None
    """Mean over the measured seconds of the busiest generator process."""


def judge_stage(t: StageTotals, guards: Guards) -> list[Breach]:
    """Rules over the whole measured part of a stage."""
    breaches: list[Breach] = []
    completed = t.ok + t.errors
    if t.generator_cpu_pct is not None and t.generator_cpu_pct > guards.max_generator_cpu_pct:
        breaches.append(
            Breach(
                "generator",
                f"load generator CPU averaged {t.generator_cpu_pct:.0f}% > "
                f"{guards.max_generator_cpu_pct:.0f}%: add workers (--workers)",
            )
        )
    if completed > 0 and _ratio(t.errors, completed) > guards.max_error_ratio:
        breaches.append(
            Breach("errors", f"error ratio {_ratio(t.errors, completed):.2%} > {guards.max_error_ratio:.2%}")
        )
    if guards.slo_p95_ms is not None and t.p95_ms is not None and t.p95_ms > guards.slo_p95_ms:
        breaches.append(Breach("p95", f"p95 {t.p95_ms:.0f} ms > SLO {guards.slo_p95_ms:g} ms"))
    if guards.slo_p99_ms is not None and t.p99_ms is not None and t.p99_ms > guards.slo_p99_ms:
        breaches.append(Breach("p99", f"p99 {t.p99_ms:.0f} ms > SLO {guards.slo_p99_ms:g} ms"))
    arrivals = t.requests + t.dropped
    if arrivals > 0 and _ratio(t.dropped, arrivals) > guards.max_dropped_ratio:
        breaches.append(Breach("dropped", f"{_ratio(t.dropped, arrivals):.1%} of arrivals dropped (no free slot)"))
    if t.offered_rps > 0 and t.achieved_rps / t.offered_rps < guards.min_goodput_ratio:
        breaches.append(
            Breach(
                "goodput",
                f"goodput {t.achieved_rps:.1f}/s is {t.achieved_rps / t.offered_rps:.0%} of "
                f"offered {t.offered_rps:.1f}/s < {guards.min_goodput_ratio:.0%}",
            )
        )
    if t.requests == 0 and t.target_rps > 0:
        breaches.append(Breach("no-traffic", "no request was sent in the measured part of the stage"))
    return breaches


def is_generator_bound(breaches: Sequence[Breach]) -> bool:
    return any(b.generator for b in breaches)
