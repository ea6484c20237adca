"""The soak: hold one open-model rate (or a shape around it) for a long time, then fit the drift.

A search finds where the cluster breaks in minutes; a soak finds what an hour at the production peak
does: memory that grows a little per request, a job queue that drains a little slower than it fills,
latency that creeps. It runs with the search's set-up and guards (``run.py``: the same target checks,
live window guards that abort a segment, metric guards, events, the results folder, recovery after
a breach) and is cut into *segments* back to back, each stored as a stage when it ends, so Ctrl-C or
a breach keeps everything measured. At the end ``analyze.drift`` fits every drift with its interval
and judges the soak against ``[soak]`` (docs/design.md, soak).
"""

from __future__ import annotations

import logging
from contextlib import ExitStack
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rich.console import Console

from capacity.analyze.drift import DRIFTS, SoakDrift, SoakInputs, soak_drift
from capacity.core.errors import CapacityError
from capacity.core.models import RunSummary
from capacity.core.outcomes import StopReason, Verdict, guard_stop
from capacity.load.schedule import shape_of
from capacity.plan.experiment import Experiment
from capacity.plan.strategies import Probe
from capacity.search import stop_rules as rules
from capacity.search.finish import report_or_warn, summary_of
from capacity.search.options import SearchOptions
from capacity.search.recovery_wait import wait_for_recovery
from capacity.search.run import RunParts, SearchRun, open_run
from capacity.search.soak_plan import Segment, SoakPlan

if TYPE_CHECKING:
    from capacity.core.measurement import StageSpec

log = logging.getLogger("capacity.search")

EXIT_PASS, EXIT_FAIL, EXIT_INTERRUPTED = 0, 1, 130


@dataclass
class SoakOutcome:
    """A finished soak: the run summary, the drift analysis, and what it means for the exit code."""

    summary: RunSummary
    drift: SoakDrift

    @property
    def verdict(self) -> str:
        """``fail`` when a drift grew past ``[soak]`` or the soak stopped early (a guard, the generator)."""
        held = self.summary.stopped_reason in ("done", "interrupted")
        return "pass" if held and self.drift.verdict == "pass" else "fail"

    def contract(self) -> dict[str, Any]:
        """Exactly the ``capacity soak --json`` object."""
        return {**self.drift.contract(), "verdict": self.verdict}

    @property
    def exit_code(self) -> int:
        if self.summary.stopped_reason == StopReason.INTERRUPTED:
            return EXIT_INTERRUPTED
        return EXIT_PASS if self.verdict == "pass" else EXIT_FAIL


def run_soak(
    exp: Experiment, plan: SoakPlan, *, options: SearchOptions | None = None, console: Console | None = None
) -> SoakOutcome:
    """Run a soak end to end; the run folder holds every finished segment whatever happens."""
    from capacity.load.patching import patch_gevent

    patch_gevent()
    opts = options or SearchOptions()
    console = console if console is not None else Console(stderr=True)
    segments = plan.segments(exp)  # bad shapes fail here, before anything starts
    with ExitStack() as stack:
        parts = open_run(exp, opts, stack)
        parts.store.update_manifest(kind="soak", soak={"base_rps": plan.base_rps, "duration_s": plan.duration_s})
        run = SoakRun(exp, opts, console, parts, plan, segments)
        return run.soak()
    raise AssertionError("unreachable")  # pragma: no cover


class SoakRun(SearchRun):
    """A soak in progress: segments back to back at one rate (or shape), judged like search stages."""

    metrics_wait = False
    """Segments follow each other at once: metrics are read as they are, the catch-up fills the rest."""

    def __init__(
        self,
        exp: Experiment,
        opts: SearchOptions,
        console: Console,
        parts: RunParts,
        plan: SoakPlan,
        segments: list[Segment],
    ) -> None:
        super().__init__(
            exp,
            opts,
            console,
            parts.driver,
            parts.source,
            parts.store,
            parts.flag,
            parts.base_url,
            parts.baseline_ms,
            parts.truth,
            baseline=parts.baseline,
        )
        self.plan, self.segments = plan, segments
        self.progress.title = f"{exp.name}: soak {plan.why} for {plan.duration_s:g} s"

    def soak(self) -> SoakOutcome:
        if self.show:
            self.console.print(
                f"[bold]capacity soak[/] {self.exp.name} -> {self.base_url} at {self.plan.why} for "
                f"{self.plan.duration_s:g} s in {len(self.segments)} segment(s)  (results: {self.store.path})"
            )
        self.events.post("soak start", f"capacity soak {self.exp.name}: {self.plan.why}", [])
        try:
            with self.progress:
                self.segment_loop()
            if self.state.ended_on_failure and not self.flag:
                self.recover()
            if self.source is not None and self.exp.metrics.catch_up and not self.flag:
                self.catch_up()
        except CapacityError:
            self.state.stopped_reason = self.state.stopped_reason or StopReason.ERROR
            self.finish_soak(show=False)
            raise
        outcome = self.finish_soak(show=self.show)
        self.events.post("soak result", _result_text(outcome), [f"verdict:{outcome.verdict}"])
        return outcome

    def segment_loop(self) -> None:
        """Every segment in turn, until the soak's end, a guard, the generator or the user stops it."""
        state = self.state
        for seg in self.segments:
            if self.flag:
                state.stopped_reason = StopReason.INTERRUPTED
                break
            spec = self.segment_spec(seg)
            probe = Probe(spec.target_rps, "soak", f"segment {seg.index + 1} of {len(self.segments)}")
            result = self.run_stage(spec, probe)
            state.results.append(result)
            state.search_path.append({"index": result.index, "rate": round(spec.target_rps, 3), "probe": "soak"})
            decision = rules.after_stage(result, interrupted=bool(self.flag))
            if decision.warning:
                state.warnings.append(decision.warning)
            if decision.stop:
                state.stopped_reason = decision.stop
                break
            if result.verdict is Verdict.FAIL:
                state.stopped_reason = guard_stop(state.first_breach.get(result.index))
                break
        state.stopped_reason = state.stopped_reason or StopReason.DONE
        self.progress.note("")

    def segment_spec(self, seg: Segment) -> StageSpec:
        from capacity.core.measurement import StageSpec

        soak, exp = self.exp.soak, self.exp
        rate, shape = (seg.peak_rps, ()) if soak.shape == "flat" else shape_of(seg.points, seg.seconds)
        warmup = min(soak.warmup_seconds, seg.seconds / 2) if seg.index == 0 else 0.0
        return StageSpec(
            index=seg.index,
            target_rps=rate,
            duration_s=seg.seconds,
            warmup_s=warmup,
            arrival=soak.arrival,
            shape=shape,
            max_inflight=self.max_inflight_for(seg.peak_rps),
            seed=exp.stages.seed + seg.index,
        )

    def recover(self) -> None:
        """After a breach, wait for the target to come back (the next job must not start on a hurt cluster)."""
        rec = wait_for_recovery(
            self.driver, self.source, self.baseline_ms, self.exp, self.flag, self.progress, baseline=self.baseline
        )
        if not rec.ok:
            self.state.warnings.append(rec.detail)

    def finish_soak(self, *, show: bool) -> SoakOutcome:
        """Summary, drift analysis (``soak.json``), report; runs on every exit path."""
        summary = summary_of(self.exp, self.store, self.state, target=self.base_url, started=self.started)
        self.store.write_summary(summary)
        outcome = SoakOutcome(summary, self.analyse())
        self.store.write_json("soak.json", self.soak_record(outcome))
        self.store.finish()
        if self.opts.write_report:
            report_or_warn(self.store)
        if show:
            from capacity.search.soak_outcome import print_soak

            print_soak(self.console, outcome, self.store.read_json("soak.json") or {})
        return outcome

    def analyse(self) -> SoakDrift:
        from capacity.store import load_run

        run = load_run(self.store.path)
        exp, soak = self.exp, self.exp.soak
        inputs = SoakInputs(
            thresholds=soak.thresholds(),
            slo_p95_ms=exp.guards.slo_p95_ms,
            max_error_ratio=exp.guards.max_error_ratio,
            mem_limit_mib=float(exp.cluster.mem_mib_per_task),
            queue_limit_jobs=soak.queue_limit_jobs,
            min_hours_to_limit=soak.min_hours_to_limit,
            confidence=soak.confidence,
        )
        return soak_drift(run.seconds, run.metrics, inputs)

    def soak_record(self, outcome: SoakOutcome) -> dict[str, Any]:
        """``soak.json``: the ``--json`` contract, the figures behind it, the plan and (sandbox) what was set."""
        drift = outcome.drift
        record: dict[str, Any] = {
            **outcome.contract(),
            "reasons": drift.reasons,
            "stopped_reason": outcome.summary.stopped_reason,
            "plan": {
                "base_rps": self.plan.base_rps,
                "duration_s": self.plan.duration_s,
                "why": self.plan.why,
                "shape": self.exp.soak.shape,
                "segments": [{"index": s.index, "start_s": s.start_s, "points": list(s.points)} for s in self.segments],
            },
            "thresholds": self.exp.soak.thresholds(),
            "limits": {name: drift.drifts[name].limit for name in DRIFTS},
            "detail": drift.detail,
        }
        if self.exp.target.is_sandbox:
            record["sandbox_set"] = _sandbox_set(self.exp, drift)
        return record


def _sandbox_set(exp: Experiment, drift: SoakDrift) -> dict[str, Any]:
    """The faults set in the sandbox, as the slopes a soak should find (to compare with the fits)."""
    kb = exp.sandbox.mem_growth_kb
    per_k = kb * 1000.0 / 1024.0
    per_task_hour = drift.detail.get("requests_per_task_per_hour")
    return {
        "mem_growth_kb": kb,
        "mem_mib_per_1000_requests": per_k,
        "mem_mib_per_hour": per_k * per_task_hour / 1000.0 if per_task_hour else None,
        "job_slowdown_per_hour": exp.sandbox.job_slowdown_per_hour,
    }


def _result_text(outcome: SoakOutcome) -> str:
    d = outcome.drift.drifts
    parts = [f"{n}: {d[n].verdict}" for n in DRIFTS]
    return f"soak {outcome.verdict} ({'; '.join(parts)}); stopped: {outcome.summary.stopped_reason}"
