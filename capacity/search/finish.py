"""The end of every run, whatever ended it: analyse, size, write the summary and the report.

Runs on every exit path (done, guard, interrupt, error), so a run folder always closes with a
``summary.json`` that covers every finished stage.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from rich.console import Console

from capacity.core.errors import CapacityError
from capacity.core.models import Estimate, RunSummary, StageResult
from capacity.core.outcomes import StopReason, Verdict
from capacity.plan.experiment import Experiment
from capacity.report.estimate_text import format_estimate
from capacity.store import RunStore

log = logging.getLogger("capacity.search")


@dataclass
class RunState:
    """What a run accumulates as it goes; held once by the run and read by ``finish``."""

    results: list[StageResult] = field(default_factory=list)
    search_path: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    stopped_reason: str = ""
    stop_detail: str = ""
    truth: dict[str, Any] | None = None
    first_breach: dict[int, str] = field(default_factory=dict)
    """Stage index -> code of the guard that failed it first (``guard:<code>`` in ``stopped_reason``)."""

    @property
    def ended_on_failure(self) -> bool:
        """The last stage failed its guards: the target must recover before anything else runs."""
        return bool(self.results) and self.results[-1].verdict is Verdict.FAIL


def finish_run(
    exp: Experiment,
    store: RunStore,
    state: RunState,
    *,
    target: str,
    started: datetime,
    write_report: bool,
    console: Console | None,
) -> RunSummary:
    """Analyse, size, write ``summary.json`` and the report; print the outcome when ``console`` is given."""
    summary = summary_of(exp, store, state, target=target, started=started)
    try:
        summary = with_analysis(exp, store, summary)
    except CapacityError as exc:
        summary.warnings.append(f"analysis: {exc}")
    summary = with_bottleneck(summary)
    store.write_summary(summary)
    store.finish()
    if write_report:
        report_or_warn(store)
    if console is not None:
        from capacity.search.outcome import print_outcome

        print_outcome(console, summary)
    return summary


def summary_of(exp: Experiment, store: RunStore, state: RunState, *, target: str, started: datetime) -> RunSummary:
    """The run summary of what the run holds now (before analysis), for a search or a soak alike."""
    return RunSummary(
        run_id=store.run_id,
        results_dir=str(store.path),
        experiment=exp.name,
        target=target,
        stopped_reason=state.stopped_reason or StopReason.DONE,
        stop_detail=state.stop_detail,
        stages=state.results,
        started_at=started,
        ended_at=datetime.now(UTC),
        search_path=state.search_path,
        truth=state.truth,
        warnings=state.warnings,
    )


def with_bottleneck(summary: RunSummary) -> RunSummary:
    """The summary naming what limited each failing stage, the first one as ``bottleneck``."""
    from capacity.analyze.bottleneck import name_bottlenecks

    found = name_bottlenecks(summary.stages)
    return summary.model_copy(update={"bottleneck": found[0] if found else None, "bottlenecks": found})


def report_or_warn(store: RunStore) -> None:
    """Write the report; a run's results stand without it, so a failure is a log line, never an error."""
    try:
        from capacity.report import write_report

        write_report(store.path)
    except CapacityError as exc:
        log.warning("report not written: %s", exc)


def with_analysis(exp: Experiment, store: RunStore, summary: RunSummary) -> RunSummary:
    """The summary with its estimates and, when a production peak is given, the recommendation."""
    from capacity.analyze import analyse_run
    from capacity.size import recommend
    from capacity.store import load_run

    if not summary.stages:
        summary.warnings.append("no stage finished: nothing to analyse")
        return summary
    run = load_run(store.path)
    analysis = analyse_run(run.stages, run.seconds, exp.guards)
    store.write_json("analysis.json", analysis.to_dict())
    summary.warnings.extend(f"analysis: {w}" for w in analysis.warnings)
    saturation = analysis.best_saturation
    estimates: dict[str, Estimate] = {
        "saturation": saturation,
        "saturation_measured": analysis.saturation,
        "slo_capacity": analysis.slo_capacity,
        "knee": analysis.knee,
    }
    if analysis.queueing is not None:
        estimates["queueing"] = analysis.queueing
    update: dict[str, Any] = {
        "saturation_rps": saturation.value,
        "slo_capacity_rps": analysis.slo_capacity.value,
        "knee_rps": analysis.knee.value,
        "capacity_interval": [analysis.slo_capacity.lo, analysis.slo_capacity.hi],
        "estimates": estimates,
    }
    if analysis.slo_capacity.value is not None or saturation.value is not None:
        try:
            rec = recommend(analysis, run.stages, exp.cluster, exp.production, exp.workload, endpoints=run.endpoints)
        except CapacityError as exc:  # e.g. no production peak given: the capacity figures still stand
            summary.warnings.append(f"no recommendation: {exc}")
        else:
            from capacity.size.rules import limit_warnings

            update["recommendation"] = rec.to_dict()
            summary.warnings.extend(limit_warnings(rec.limits))
    return summary.model_copy(update=update)


def result_text(summary: RunSummary) -> str:
    """One line for the run's closing Datadog event, each figure written as everywhere else."""
    est = summary.estimates

    def f(name: str, value: float | None) -> str:
        e = est.get(name)
        e = e.model_copy(update={"value": value}) if e is not None else Estimate(value=value)
        return format_estimate(e, unit=" req/s", missing="n/a")

    return (
        f"saturation {f('saturation', summary.saturation_rps)}, SLO capacity "
        f"{f('slo_capacity', summary.slo_capacity_rps)}, knee {f('knee', summary.knee_rps)}; "
        f"stopped: {summary.stopped_text}"
    )
