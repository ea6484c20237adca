"""The soak: hold one open-model rate (or a shape around it) for a long time, then fit the drift.

A search finds where the cluster breaks in minutes; a soak finds what an hour at the production peak
does: memory that grows a little per request, a job queue that drains a little slower than it fills,
latency that creeps. It runs with the search's set-up (``setup.py``: the same target checks) and stage
runner (``stage_runner.py``: live window guards that abort a segment, metric guards, the results
folder), cut into *segments* back to back (``staged_run.SegmentedRun``: events, recovery after a
breach), each stored as a stage when it ends, so Ctrl-C or a breach keeps everything measured. At the
end ``analyze.drift`` fits every drift with its interval and judges the soak against ``[soak]``
(docs/design.md, soak).
"""

from __future__ import annotations

import logging
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any

from rich.console import Console

from capacity.analyze.drift import DRIFTS, SoakDrift, SoakInputs, soak_drift
from capacity.core.models import RunSummary
from capacity.core.outcomes import StopReason
from capacity.plan.experiment import Experiment
from capacity.search.finish import report_or_warn, summary_of
from capacity.search.options import SearchOptions
from capacity.search.setup import RunParts, open_run
from capacity.search.soak_plan import Segment, SoakPlan
from capacity.search.staged_run import SegmentedRun

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
        return SoakRun(parts, console, plan, segments).run()
    raise AssertionError("unreachable")  # pragma: no cover


class SoakRun(SegmentedRun[SoakOutcome]):
    """A soak in progress: segments back to back at one rate (or shape), judged like search stages."""

    def __init__(self, parts: RunParts, console: Console, plan: SoakPlan, segments: list[Segment]) -> None:
        title = f"{parts.exp.name}: soak {plan.why} for {plan.duration_s:g} s"
        super().__init__(parts, console, segments, title=title)
        self.plan = plan

    def announce(self) -> None:
        if self.show:
            self.console.print(
                f"[bold]capacity soak[/] {self.exp.name} -> {self.base_url} at {self.plan.why} for "
                f"{self.plan.duration_s:g} s in {len(self.segments)} segment(s)  (results: {self.store.path})"
            )
        self.events.post("soak start", f"capacity soak {self.exp.name}: {self.plan.why}", [])

    def finish(self, *, show: bool) -> SoakOutcome:
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

    def announce_result(self, outcome: SoakOutcome) -> None:
        self.events.post("soak result", _result_text(outcome), [f"verdict:{outcome.verdict}"])

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
