"""What every run of stages holds once, and the loop of the runs cut into segments.

``StagedRun`` is the part a search, a soak and a failover run share: the run's parts (``setup.py``), its
state, progress, events and ``StageRunner``, recovery and the catch-up. ``SegmentedRun`` is the loop of
the runs that hold one rate (or shape) in segments back to back (soak, failover): each segment is a
stored stage, the first failing one ends the run, and the run's own hooks say what happens around it.
A run composes these; none inherits another's loop (docs/design.md, "One stage runner").
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from datetime import UTC, datetime
from typing import Generic, TypeVar

from rich.console import Console

from capacity.core.errors import CapacityError
from capacity.core.models import StageResult
from capacity.core.outcomes import StopReason, Verdict, guard_stop
from capacity.plan.strategies import Probe
from capacity.search import stop_rules as rules
from capacity.search.events import RunEvents
from capacity.search.finish import RunState
from capacity.search.progress import Progress
from capacity.search.recovery_wait import wait_for_recovery
from capacity.search.setup import RunParts
from capacity.search.soak_plan import Segment, segment_spec
from capacity.search.stage_runner import StageRunner

log = logging.getLogger("capacity.search")

Outcome = TypeVar("Outcome")


class StagedRun:
    """A run of stages in progress: its parts, the state it builds, and what every such run does."""

    metrics_wait = True
    """Wait for each stage's server metrics to be complete (back-to-back segments do not)."""

    def __init__(self, parts: RunParts, console: Console, *, title: str) -> None:
        self.parts = parts
        self.exp, self.opts, self.console = parts.exp, parts.opts, console
        self.driver, self.source, self.store, self.flag = parts.driver, parts.source, parts.store, parts.flag
        self.base_url = parts.base_url
        self.state = RunState(truth=parts.truth)
        self.show = not self.opts.json_mode
        self.events = RunEvents(parts.source, parts.exp, parts.store)
        self.progress = Progress(console, enabled=self.show, title=title)
        self.stages = StageRunner(parts, self.state, self.progress, metrics_wait=self.metrics_wait)
        self.started = datetime.now(UTC)

    def max_inflight_for(self, rate: float) -> int:
        """The in-flight cap of a stage at ``rate``: the CLI's, the plan's, or enough for the SLO at that rate."""
        from capacity.load.schedule import suggest_max_inflight

        exp = self.exp
        return int(
            self.opts.max_inflight
            or exp.stages.max_inflight
            or suggest_max_inflight(rate, exp.guards.slo_p95_ms or 1000.0, exp.target.timeout_s)
        )

    def decide(self, result: StageResult) -> rules.AfterStage:
        """The stop rules' word on a stage (its warning kept with the run's)."""
        decision = rules.after_stage(result, interrupted=bool(self.flag))
        if decision.warning:
            self.state.warnings.append(decision.warning)
        return decision

    def recover(self) -> bool:
        """Wait for the target to come back after a breach (nothing must start on a hurt cluster); False,
        with the reason in the warnings, when it did not within ``recovery_timeout_s``."""
        p = self.parts
        rec = wait_for_recovery(p.driver, p.source, p.baseline_ms, p.exp, p.flag, self.progress, baseline=p.baseline)
        if not rec.ok:
            self.state.warnings.append(rec.detail)
        return rec.ok

    def catch_up(self) -> None:
        """Late metrics: re-fetch stages whose window was incomplete, without waiting; re-judge blind ones."""
        from capacity.search.late import catch_up

        if self.source is not None and self.exp.metrics.catch_up and not self.flag:
            catch_up(self.source, self.exp, self.store, self.state)


class SegmentedRun(StagedRun, ABC, Generic[Outcome]):
    """One rate (or shape) held in segments back to back, each judged and stored as a stage."""

    metrics_wait = False
    """Segments follow each other at once: metrics are read as they are, the catch-up fills the rest."""
    probe_kind = "soak"
    catches_up = True

    def __init__(self, parts: RunParts, console: Console, segments: list[Segment], *, title: str) -> None:
        super().__init__(parts, console, title=title)
        self.segments = segments

    def run(self) -> Outcome:
        """Announce, run the segments, recover after a breach, catch up; ``finish`` runs on every exit path."""
        self.announce()
        try:
            with self.progress:
                self.segment_loop()
            self.after_segments()
            if self.state.ended_on_failure and not self.flag:
                self.recover()
            if self.catches_up:
                self.catch_up()
        except CapacityError:
            self.state.stopped_reason = self.state.stopped_reason or StopReason.ERROR
            self.finish(show=False)
            raise
        finally:
            self.release()
        outcome = self.finish(show=self.show)
        self.announce_result(outcome)
        return outcome

    def segment_loop(self) -> None:
        """Every segment in turn, until the plan's end, ``before_segment``, a breach or the user stops it."""
        state = self.state
        for seg in self.segments:
            if self.flag:
                state.stopped_reason = StopReason.INTERRUPTED
                break
            if not self.before_segment(seg):
                break
            spec = segment_spec(self.exp, seg, self.max_inflight_for(seg.peak_rps))
            probe = Probe(spec.target_rps, self.probe_kind, f"segment {seg.index + 1} of {len(self.segments)}")
            result = self.stages.run(spec, probe)
            state.results.append(result)
            state.search_path.append({"index": result.index, "rate": round(spec.target_rps, 3), "probe": probe.kind})
            decision = self.decide(result)
            if decision.stop:
                state.stopped_reason = decision.stop
                break
            if result.verdict is Verdict.FAIL:
                state.stopped_reason = guard_stop(state.first_breach.get(result.index))
                break
        state.stopped_reason = state.stopped_reason or StopReason.DONE
        self.progress.note("")

    # ------------------------------------------------------------------------ the run's own hooks
    def announce(self) -> None:
        """The first line and the start event."""

    def before_segment(self, seg: Segment) -> bool:
        """Anything to do before ``seg`` (a failover loses its tasks here); False ends the run."""
        return True

    def after_segments(self) -> None:
        """Anything to wait for once the segments end (a failover waits for the replacement)."""

    def release(self) -> None:
        """Let go of what the run started (a failover's watch), on every exit path."""

    @abstractmethod
    def finish(self, *, show: bool) -> Outcome:
        """Summary, the run's analysis and record, report: on every exit path."""

    def announce_result(self, outcome: Outcome) -> None:
        """The result event."""
