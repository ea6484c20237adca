"""Which rate to offer next: linear, geometric and adaptive (ramp, then bisect) search strategies.

A strategy is a small state machine: ``next_stage()`` proposes a rate (or ``None`` when the search
is over, with ``stop_reason`` saying why) and ``record()`` tells it whether that stage held. No
strategy ever proposes a rate above the first one that failed: past the edge, every extra stage
hurts whoever shares the staging cluster.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Protocol

from capacity.core.outcomes import StopReason
from capacity.plan.experiment import StagePlanSettings


@dataclass(frozen=True)
class Probe:
    """One planned stage: the rate and why this rate (``ramp``, ``linear``, ``bisect``, ``confirm``)."""

    rate: float
    kind: str
    why: str


class Strategy(Protocol):
    stop_reason: str

    def next_stage(self) -> Probe | None: ...

    def record(self, rate: float, passed: bool, goodput: float | None = None) -> None: ...


@dataclass
class StepStrategy:
    """Linear (``start + k*step``) or geometric (``start * growth**k``) up to ``max_rps``.

    Stops at the first failure.
    """

    settings: StagePlanSettings
    geometric: bool = False
    stop_reason: str = ""
    _k: int = 0
    _failed: bool = False
    _done_max: bool = False

    def _rate(self, k: int) -> float:
        s = self.settings
        if self.geometric:
            return s.start_rps * s.growth**k
        step = s.step_rps if s.step_rps is not None else max(s.start_rps, (s.max_rps - s.start_rps) / 10)
        return s.start_rps + k * step

    def next_stage(self) -> Probe | None:
        if self._failed:
            return None
        if self._done_max:
            self.stop_reason = StopReason.MAX_RPS
            return None
        rate = self._rate(self._k)
        if rate >= self.settings.max_rps * (1 - 1e-9):
            rate = self.settings.max_rps
            self._done_max = True
        self._k += 1
        kind = "geometric" if self.geometric else "linear"
        return Probe(rate, kind, f"step {self._k} of the {kind} plan")

    def record(self, rate: float, passed: bool, goodput: float | None = None) -> None:
        if not passed:
            self._failed = True


@dataclass
class AdaptiveStrategy:
    """Geometric ramp until the first failing stage, then bisection between last good and first bad.

    Stops when ``(bad - good) / good < resolution``, when the stage budget is spent, or at ``max_rps``
    with every stage passing (capacity then is only a lower bound). With ``confirm``, the final good
    rate is run once more; if it fails, the search bisects below it.

    A stage that failed because goodput fell short of the offered rate measured the saturation
    throughput itself: the next probe goes just above that goodput rather than to the midpoint, which
    usually turns a long bisection into one or two stages. The hint is only a probe, never taken as a
    failure until a stage has failed there.
    """

    settings: StagePlanSettings
    stop_reason: str = ""
    good: float | None = None
    bad: float | None = None
    history: list[tuple[Probe, bool]] = field(default_factory=list)
    _pending: Probe | None = None
    _confirmed: bool = False
    _hint: tuple[float, str] | None = None

    def next_stage(self) -> Probe | None:
        s = self.settings
        if len(self.history) >= s.max_stages:
            self.stop_reason = StopReason.MAX_STAGES
            return None
        if self.bad is None:
            if self.good is None:
                probe = Probe(s.start_rps, "ramp", "first stage at start_rps")
            elif self.good >= s.max_rps * (1 - 1e-9):
                self.stop_reason = StopReason.MAX_RPS
                return None
            else:
                nxt = min(self.good * s.growth, s.max_rps)
                probe = Probe(nxt, "ramp", f"{self.good:g}/s held: x{s.growth:g}")
        elif self.good is None:
            self.stop_reason = StopReason.FIRST_STAGE_FAILED
            return None
        elif (self.bad - self.good) / self.good >= s.resolution and self._hint is not None:
            rate, why = self._hint
            self._hint = None
            probe = Probe(rate, "bisect", why)
        elif (self.bad - self.good) / self.good >= s.resolution:
            mid = (self.good + self.bad) / 2
            probe = Probe(mid, "bisect", f"between last good {self.good:g}/s and first bad {self.bad:g}/s")
        elif s.confirm and not self._confirmed:
            self._confirmed = True
            probe = Probe(self.good, "confirm", f"repeat the final good rate {self.good:g}/s")
        else:
            self.stop_reason = StopReason.RESOLUTION
            return None
        self._pending = probe
        return probe

    def record(self, rate: float, passed: bool, goodput: float | None = None) -> None:
        probe = self._pending or Probe(rate, "external", "")
        self.history.append((probe, passed))
        self._pending = None
        if passed:
            if self.bad is None or rate < self.bad:
                self.good = rate if self.good is None else max(self.good, rate)
        else:
            self.bad = rate if self.bad is None else min(self.bad, rate)
            if self.good is not None and self.good >= self.bad:
                # a confirmation (or repeat) failed at the "good" rate: that rate is not good after all
                lower = [p.rate for p, ok in self.history if ok and p.rate < self.bad]
                self.good = max(lower) if lower else None
                self._confirmed = False
                if self.good is None:
                    self.stop_reason = StopReason.FIRST_STAGE_FAILED
            res = self.settings.resolution
            if goodput is not None and goodput < rate * (1 - res):
                # goodput plateaued: probe just above it, or just above the last good rate when that is
                # higher already (one stage then closes the gap to the resolution)
                hint = goodput * (1 + res)
                if self.good is not None:
                    hint = max(hint, self.good * (1 + 0.9 * res))
                if hint < self.bad:
                    self._hint = (hint, f"the stage at {rate:g}/s delivered only {goodput:.1f}/s: probe just above it")


def make_strategy(settings: StagePlanSettings) -> Strategy:
    if settings.strategy == "adaptive":
        return AdaptiveStrategy(settings)
    return StepStrategy(settings, geometric=settings.strategy == "geometric")


@dataclass(frozen=True)
class PlanPreview:
    """What ``--dry-run`` prints: the rates a run may visit and its worst-case duration."""

    strategy: str
    ramp_rates: list[float]
    max_stages: int
    max_rps: float
    worst_case_s: float


def preview(settings: StagePlanSettings, recovery_s: float = 0.0) -> PlanPreview:
    """The worst case assumes every stage passes up to the top, then bisection to the resolution."""
    s = settings
    if s.strategy == "adaptive":
        ramp: list[float] = []
        r = s.start_rps
        while r < s.max_rps * (1 - 1e-9) and len(ramp) < s.max_stages:
            ramp.append(r)
            r *= s.growth
        ramp.append(s.max_rps)
        # failing at the top leaves a gap of (growth-1) to bisect down to the resolution
        bisect = max(0, math.ceil(math.log2(max(1.0, (s.growth - 1) / s.resolution))))
        n = min(s.max_stages, len(ramp) + bisect + (1 if s.confirm else 0))
    else:
        strat = StepStrategy(s, geometric=s.strategy == "geometric")
        ramp = []
        while (p := strat.next_stage()) is not None and len(ramp) < s.max_stages:
            ramp.append(p.rate)
        n = len(ramp)
    worst = min(s.max_duration_s, n * (s.stage_seconds + recovery_s))
    return PlanPreview(s.strategy, ramp, n, s.max_rps, worst)
