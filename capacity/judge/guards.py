"""Guards: the rules that judge a stage, over a sliding window while it runs and over the whole stage.

A breach during a stage stops that stage at once (the search must not keep hurting a shared staging
cluster), so the window rules are written to be *sustained* rather than single-second blips. The
whole-stage rules use the exact histogram of the measured part.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from capacity.breach import STAGE, Breach, rolling
from capacity.models import EndpointStats, FlowStats, SecondSample
from capacity.plan.experiment import Guards

__all__ = [
    "MIN_WINDOW_REQUESTS",
    "Breach",
    "StageTotals",
    "is_generator_bound",
    "judge_endpoints",
    "judge_flows",
    "judge_stage",
    "judge_window",
]

MIN_WINDOW_REQUESTS = 20
"""Ratios over fewer requests than this are noise at low rates; such windows are not judged."""


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
    where = rolling(w)
    breaches: list[Breach] = []

    cpus = [s.generator_cpu_pct for s in win if s.generator_cpu_pct is not None]
    if cpus and min(cpus) > (lim := guards.max_generator_cpu_pct):
        text = f"load generator CPU {min(cpus):.0f}% > {lim:.0f}% for {w} s: add workers (--workers)"
        breaches.append(Breach("generator", "generator_cpu_pct", text, min(cpus), lim, window=where))
    ratio = _ratio(errors, completed)
    if completed >= MIN_WINDOW_REQUESTS and ratio > (lim := guards.max_error_ratio):
        text = f"error ratio {ratio:.1%} > {lim:.1%} over the last {w} s"
        breaches.append(Breach("errors", "error_ratio", text, ratio, lim, window=where))
    for q, slo in (("p95", guards.slo_p95_ms), ("p99", guards.slo_p99_ms)):
        if slo is None:
            continue
        values = [getattr(s, f"{q}_ms") for s in win]
        if all(v is not None and v > slo for v in values):
            low = min(v for v in values if v is not None)
            text = f"{q} over SLO {slo:g} ms for {w} s (lowest {low:.0f} ms)"
            breaches.append(Breach(q, f"{q}_ms", text, low, slo, window=where))
    arrivals = offered + dropped
    ratio = _ratio(dropped, arrivals)
    if arrivals >= MIN_WINDOW_REQUESTS and ratio > (lim := guards.max_dropped_ratio):
        text = f"{ratio:.1%} of arrivals dropped (no free slot) over the last {w} s"
        breaches.append(Breach("dropped", "dropped_ratio", text, ratio, lim, window=where))
    ratio = _ratio(ok, offered)
    if offered >= MIN_WINDOW_REQUESTS and ratio < (lim := guards.min_goodput_ratio):
        text = f"goodput {ok / w:.1f}/s is {ratio:.0%} of offered {offered / w:.1f}/s < {lim:.0%}"
        breaches.append(Breach("goodput", "goodput_ratio", text, ratio, lim, window=where))
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
    unfinished: int = 0
    """Sent and still in flight when the stage stopped: failures for the error ratio."""


def judge_stage(t: StageTotals, guards: Guards) -> list[Breach]:
    """Rules over the whole measured part of a stage."""
    breaches: list[Breach] = []
    completed = t.ok + t.errors + t.unfinished
    cpu = t.generator_cpu_pct
    if cpu is not None and cpu > (lim := guards.max_generator_cpu_pct):
        text = f"load generator CPU averaged {cpu:.0f}% > {lim:.0f}%: add workers (--workers)"
        breaches.append(Breach("generator", "generator_cpu_pct", text, cpu, lim, window=STAGE))
    ratio = _ratio(t.errors + t.unfinished, completed)
    if completed > 0 and ratio > (lim := guards.max_error_ratio):
        breaches.append(Breach("errors", "error_ratio", f"error ratio {ratio:.2%} > {lim:.2%}", ratio, lim))
    for q, slo, value in (("p95", guards.slo_p95_ms, t.p95_ms), ("p99", guards.slo_p99_ms, t.p99_ms)):
        if slo is not None and value is not None and value > slo:
            breaches.append(Breach(q, f"{q}_ms", f"{q} {value:.0f} ms > SLO {slo:g} ms", value, slo))
    arrivals = t.requests + t.dropped
    ratio = _ratio(t.dropped, arrivals)
    if arrivals > 0 and ratio > (lim := guards.max_dropped_ratio):
        text = f"{ratio:.1%} of arrivals dropped (no free slot)"
        breaches.append(Breach("dropped", "dropped_ratio", text, ratio, lim))
    if t.offered_rps > 0 and (ratio := t.achieved_rps / t.offered_rps) < (lim := guards.min_goodput_ratio):
        text = f"goodput {t.achieved_rps:.1f}/s is {ratio:.0%} of offered {t.offered_rps:.1f}/s < {lim:.0%}"
        breaches.append(Breach("goodput", "goodput_ratio", text, ratio, lim))
    if t.requests == 0 and t.target_rps > 0:
        text = "no request was sent in the measured part of the stage"
        breaches.append(Breach("no-traffic", "requests", text, 0.0, None))
    return breaches


def judge_endpoints(endpoints: Mapping[str, EndpointStats], guards: Guards) -> list[Breach]:
    """Per-endpoint SLOs (``[guards.endpoints.NAME]``) over the whole stage; the breach's scope names the endpoint."""
    breaches: list[Breach] = []
    for name, limits in guards.endpoints.items():
        stats = endpoints.get(name)
        if stats is None:
            continue
        for q, slo, value in (("p95", limits.slo_p95_ms, stats.p95_ms), ("p99", limits.slo_p99_ms, stats.p99_ms)):
            if slo is not None and value is not None and value > slo:
                text = f"{name}: {q} {value:.0f} ms > SLO {slo:g} ms"
                breaches.append(Breach(q, f"{q}_ms", text, value, slo, scope=name))
    return breaches


def judge_flows(flows: Mapping[str, FlowStats], guards: Guards) -> list[Breach]:
    """Per-flow session SLOs (``[guards.flows.NAME]``) over the whole stage; the breach's scope names the flow."""
    breaches: list[Breach] = []
    for name, limits in guards.flows.items():
        stats = flows.get(name)
        if stats is None:
            continue
        p95, lim = stats.p95_s, limits.max_session_p95_s
        if lim is not None and p95 is not None and p95 > lim:
            text = f"{name}: session p95 {p95:.2f} s > {lim:g} s"
            breaches.append(Breach("session-p95", "session_p95_s", text, p95, lim, scope=name))
        ratio, lim = stats.failed_ratio, limits.max_failed_ratio
        if lim is not None and stats.completed + stats.failed > 0 and ratio > lim:
            text = f"{name}: {ratio:.2%} of sessions failed > {lim:.2%}"
            breaches.append(Breach("session-failed", "session_failed_ratio", text, ratio, lim, scope=name))
    return breaches


def is_generator_bound(breaches: Sequence[Breach]) -> bool:
    return any(b.generator for b in breaches)
