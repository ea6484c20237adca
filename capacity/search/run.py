"""The search: plan a stage, drive it, observe the server, judge it, store it, decide what next.

``run_search`` sets the run up (``setup.py``: everything that can fail without sending load is checked
before the run folder exists) and hands a ``SearchRun`` the stage loop. Each stage runs through the
one ``StageRunner`` (``stage_runner.py``); the stop rules live in ``stop_rules.py``, recovery in
``recovery_wait.py`` and the end of the run in ``finish.py``. The design is described in docs/design.md.
"""

from __future__ import annotations

import logging
import time
from contextlib import ExitStack

from rich.console import Console

from capacity.core.errors import CapacityError
from capacity.core.measurement import StageSpec
from capacity.core.models import RunSummary, StageResult
from capacity.core.outcomes import StopReason, Verdict, guard_stop
from capacity.plan.experiment import Experiment
from capacity.plan.strategies import Probe, Strategy, make_strategy
from capacity.search import stop_rules as rules
from capacity.search.finish import finish_run, result_text
from capacity.search.options import SearchOptions
from capacity.search.setup import RunParts, open_run
from capacity.search.staged_run import StagedRun

log = logging.getLogger("capacity.search")


def run_search(exp: Experiment, *, options: SearchOptions | None = None, console: Console | None = None) -> RunSummary:
    """Run an experiment end to end; the run folder holds every finished stage whatever happens.

    Everything that can fail without sending load (host allow-list, metrics credentials, workers
    joining, the target answering) is checked before the run folder is created, so a bad setup
    leaves nothing behind but one error line.
    """
    from capacity.load.patching import patch_gevent

    patch_gevent()  # library callers too: gevent must patch ssl/socket before the driver imports them
    opts = options or SearchOptions()
    console = console if console is not None else Console(stderr=True)
    with ExitStack() as stack:
        return SearchRun(open_run(exp, opts, stack), console).run()
    raise AssertionError("unreachable")  # pragma: no cover


class SearchRun(StagedRun):
    """One search in progress: the stage loop and the state it builds, from the first stage to the summary."""

    def __init__(self, parts: RunParts, console: Console) -> None:
        super().__init__(parts, console, title=f"{parts.exp.name}: {parts.exp.stages.strategy} search")

    def run(self) -> RunSummary:
        exp, state = self.exp, self.state
        log.info("run %s: experiment %s against %s", self.store.run_id, exp.name, self.base_url)
        log.info("baseline probe latency %s ms", self.parts.baseline_ms)
        if self.show:
            self.console.print(f"[bold]capacity search[/] {exp.name} -> {self.base_url}  (results: {self.store.path})")
        self.events.post("run start", f"capacity search {exp.name} started", [])
        try:
            with self.progress:
                self.stage_loop()
            self.catch_up()
        except CapacityError:
            state.stopped_reason = state.stopped_reason or StopReason.ERROR
            self.finish(show=False)
            raise
        summary = self.finish(show=self.show)
        self.events.post("result", result_text(summary), [f"stopped:{summary.stopped_reason}"])
        return summary

    def stage_loop(self) -> None:
        """Stage after stage until the strategy, a guard, a budget, recovery or the user says stop."""
        plan, state = self.exp.stages, self.state
        strategy = make_strategy(plan)
        t0 = time.monotonic()
        while not state.stopped_reason:
            if self.flag:
                state.stopped_reason = StopReason.INTERRUPTED
                break
            probe = strategy.next_stage()
            if probe is None:
                state.stopped_reason = strategy.stop_reason or StopReason.DONE
                break
            if rules.over_budget(time.monotonic() - t0, plan.stage_seconds, plan.max_duration_s):
                state.stopped_reason = StopReason.MAX_DURATION
                state.warnings.append(rules.budget_warning(plan.max_duration_s))
                break
            result = self.stages.run(self.stage_spec(probe, len(state.results)), probe)
            self.after_stage(result, probe, strategy)
        if state.stopped_reason == StopReason.RESOLUTION:
            state.stop_detail = rules.resolution_bound(state.results, state.first_breach)
        self.progress.note("")

    def after_stage(self, result: StageResult, probe: Probe, strategy: Strategy) -> None:
        """Record the stage, apply the stop rules, and wait for recovery before the next one."""
        state = self.state
        state.results.append(result)
        state.search_path.append(
            {
                "index": result.index,
                "rate": round(probe.rate, 3),
                "probe": probe.kind,
                "why": probe.why,
                "verdict": result.verdict,
                "reason": result.reasons[0] if result.reasons else "",
            }
        )
        self.events.post(
            f"stage {result.index}",
            f"stage {result.index} at {probe.rate:.1f}/s: {result.verdict}",
            [f"stage:{result.index}"],
        )
        decision = self.decide(result)
        if decision.stop or not decision.judged:
            state.stopped_reason = decision.stop or ""
            return
        passed = result.verdict is Verdict.PASS
        strategy.record(probe.rate, passed, goodput=result.achieved_rps)
        if rules.stops_on_failure(passed, strategy=self.exp.stages.strategy, strategy_stop_reason=strategy.stop_reason):
            state.stopped_reason = guard_stop(state.first_breach.get(result.index))
            return
        if not self.recover():
            state.stopped_reason = StopReason.INTERRUPTED if self.flag else StopReason.NO_RECOVERY

    def stage_spec(self, probe: Probe, index: int) -> StageSpec:
        plan, exp = self.exp.stages, self.exp
        return StageSpec(
            index=index,
            target_rps=probe.rate,
            duration_s=plan.stage_seconds,
            warmup_s=plan.warmup_seconds,
            arrival=plan.arrival,
            max_inflight=self.max_inflight_for(probe.rate),
            seed=plan.seed + index,
            guard_window_s=exp.guards.window_seconds,
        )

    def finish(self, *, show: bool) -> RunSummary:
        return finish_run(
            self.exp,
            self.store,
            self.state,
            target=self.base_url,
            started=self.started,
            write_report=self.opts.write_report,
            console=self.console if show else None,
        )
