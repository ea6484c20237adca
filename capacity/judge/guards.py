"""Guards: the rules that judge a stage, over a sliding window while it runs and over the whole stage.

A breach during a stage stops that stage at once (the search must not keep hurting a shared staging
cluster), so the window rules are written to be *sustained* rather than single-second blips. The
whole-stage rules use the exact histogram of the measured part.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from capacity.core.breach import STAGE, Breach, rolling
from capacity.core.models import EndpointStats, FlowStats, SecondSample
from capacity.core.outcomes import GuardCode
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


@dataclass(frozen=True)
class _Figure:
    """One figure a rule reads, over a window or the whole stage, with the words that describe it there."""

    value: float | None
    """None: not enough data to judge (too few requests, a second without latency, no generator sample)."""
    text: str
    """The breach's sentence, ``{v}``/``{lim}`` filled in by the rule."""


@dataclass(frozen=True)
class _Rule:
    code: GuardCode
    metric: str
    limit: Callable[[Guards], float | None]
    low_is_bad: bool = False
    """Goodput breaks below its limit; every other figure above."""

    def check(self, fig: _Figure | None, guards: Guards, where: str) -> Breach | None:
        lim = self.limit(guards)
        if fig is None or fig.value is None or lim is None:
            return None
        broken = fig.value < lim if self.low_is_bad else fig.value > lim
        if not broken:
            return None
        return Breach(self.code, self.metric, fig.text.format(v=fig.value, lim=lim), fig.value, lim, window=where)


RULES: tuple[_Rule, ...] = (
    _Rule(GuardCode.GENERATOR, "generator_cpu_pct", lambda g: g.max_generator_cpu_pct),
    _Rule(GuardCode.ERRORS, "error_ratio", lambda g: g.max_error_ratio),
    _Rule(GuardCode.P95, "p95_ms", lambda g: g.slo_p95_ms),
    _Rule(GuardCode.P99, "p99_ms", lambda g: g.slo_p99_ms),
    _Rule(GuardCode.DROPPED, "dropped_ratio", lambda g: g.max_dropped_ratio),
    _Rule(GuardCode.GOODPUT, "goodput_ratio", lambda g: g.min_goodput_ratio, low_is_bad=True),
)
"""The client-side rules, once: a window and the whole stage differ only in how they read each figure."""


def _apply(figures: Mapping[GuardCode, _Figure], guards: Guards, where: str) -> list[Breach]:
    return [b for rule in RULES if (b := rule.check(figures.get(rule.code), guards, where)) is not None]


def _sustained(win: Sequence[SecondSample], q: str) -> float | None:
    """The lowest per-second percentile of the window: above the SLO only if every second was."""
    values = [getattr(s, f"{q}_ms") for s in win]
    return None if any(v is None for v in values) else min(values)


def _window_figures(win: Sequence[SecondSample], w: int) -> dict[GuardCode, _Figure]:
    offered = sum(s.offered for s in win)
    ok = sum(s.ok for s in win)
    errors = sum(s.errors for s in win)
    dropped = sum(s.dropped for s in win)
    completed, arrivals = ok + errors, offered + dropped
    cpus = [s.generator_cpu_pct for s in win if s.generator_cpu_pct is not None]

    def enough(n: int, ratio: float) -> float | None:
        return ratio if n >= MIN_WINDOW_REQUESTS else None

    return {
        GuardCode.GENERATOR: _Figure(
            min(cpus) if cpus else None,
            f"load generator CPU {{v:.0f}}% > {{lim:.0f}}% for {w} s: add workers (--workers)",
        ),
        GuardCode.ERRORS: _Figure(
            enough(completed, _ratio(errors, completed)), f"error ratio {{v:.1%}} > {{lim:.1%}} over the last {w} s"
        ),
        **{
            code: _Figure(_sustained(win, q), f"{q} over SLO {{lim:g}} ms for {w} s (lowest {{v:.0f}} ms)")
            for code, q in ((GuardCode.P95, "p95"), (GuardCode.P99, "p99"))
        },
        GuardCode.DROPPED: _Figure(
            enough(arrivals, _ratio(dropped, arrivals)),
            f"{{v:.1%}} of arrivals dropped (no free slot) over the last {w} s",
        ),
        GuardCode.GOODPUT: _Figure(
            enough(offered, _ratio(ok, offered)),
            f"goodput {ok / w:.1f}/s is {{v:.0%}} of offered {offered / w:.1f}/s < {{lim:.0%}}",
        ),
    }


def judge_window(samples: Sequence[SecondSample], guards: Guards, *, skip_first_s: int = 2) -> list[Breach]:
    """Rules over the last ``guards.window_seconds`` seconds of a running stage.

    The first seconds of a stage are skipped: responses lag arrivals and the window would read a
    goodput shortfall that is only the stage starting.
    """
    w = guards.window_seconds
    usable = [s for i, s in enumerate(samples) if i >= skip_first_s]
    if len(usable) < w:
        return []
    return _apply(_window_figures(usable[-w:], w), guards, rolling(w))


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


def _stage_figures(t: StageTotals) -> dict[GuardCode, _Figure]:
    completed, arrivals = t.ok + t.errors + t.unfinished, t.requests + t.dropped
    goodput = t.achieved_rps / t.offered_rps if t.offered_rps > 0 else None
    return {
        GuardCode.GENERATOR: _Figure(
            t.generator_cpu_pct, "load generator CPU averaged {v:.0f}% > {lim:.0f}%: add workers (--workers)"
        ),
        GuardCode.ERRORS: _Figure(
            _ratio(t.errors + t.unfinished, completed) if completed > 0 else None, "error ratio {v:.2%} > {lim:.2%}"
        ),
        GuardCode.P95: _Figure(t.p95_ms, "p95 {v:.0f} ms > SLO {lim:g} ms"),
        GuardCode.P99: _Figure(t.p99_ms, "p99 {v:.0f} ms > SLO {lim:g} ms"),
        GuardCode.DROPPED: _Figure(
            _ratio(t.dropped, arrivals) if arrivals > 0 else None, "{v:.1%} of arrivals dropped (no free slot)"
        ),
        GuardCode.GOODPUT: _Figure(
            goodput,
            f"goodput {t.achieved_rps:.1f}/s is {{v:.0%}} of offered {t.offered_rps:.1f}/s < {{lim:.0%}}",
        ),
    }


def judge_stage(t: StageTotals, guards: Guards) -> list[Breach]:
    """Rules over the whole measured part of a stage."""
    breaches = _apply(_stage_figures(t), guards, STAGE)
    if t.requests == 0 and t.target_rps > 0:
        text = "no request was sent in the measured part of the stage"
        breaches.append(Breach(GuardCode.NO_TRAFFIC, "requests", text, 0.0, None))
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
                breaches.append(Breach(GuardCode(q), f"{q}_ms", text, value, slo, scope=name))
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
            breaches.append(Breach(GuardCode.SESSION_P95, "session_p95_s", text, p95, lim, scope=name))
        ratio, lim = stats.failed_ratio, limits.max_failed_ratio
        if lim is not None and stats.completed + stats.failed > 0 and ratio > lim:
            text = f"{name}: {ratio:.2%} of sessions failed > {lim:.2%}"
            breaches.append(Breach(GuardCode.SESSION_FAILED, "session_failed_ratio", text, ratio, lim, scope=name))
    return breaches


def is_generator_bound(breaches: Sequence[Breach]) -> bool:
    return any(b.generator for b in breaches)
