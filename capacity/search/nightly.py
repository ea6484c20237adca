"""The nightly gate: search, compare with a baseline run, report, tell Datadog, exit with a verdict.

Nobody watches a nightly job, so its exit code is the message: 0 ok (or improved), 1 regression,
2 error (bad input, unreachable target), 3 inconclusive (no baseline, or a capacity that was not
determined). The baseline is chosen *before* the search so the new run can never be its own baseline.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console

from capacity.core.errors import CapacityError
from capacity.core.models import RunSummary
from capacity.plan.experiment import Experiment
from capacity.report.compare import EXIT_CODES, Comparison, compare_runs
from capacity.search.options import SearchOptions
from capacity.store import LoadedRun, atomic_write_text, find_run_dir, list_runs, load_run

log = logging.getLogger("capacity.nightly")

SearchFn = Callable[[Experiment, Path, bool, Console | None], RunSummary]
EventFn = Callable[[Experiment, str, str, list[str]], str | None]


@dataclass
class NightlyOutcome:
    verdict: str
    exit_code: int
    reason: str
    run_id: str
    run_dir: Path
    baseline_dir: Path | None
    comparison: Comparison | None
    report: Path | None
    event_id: str | None = None
    event_error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict,
            "exit_code": self.exit_code,
            "reason": self.reason,
            "run_id": self.run_id,
            "run_dir": str(self.run_dir),
            "baseline_dir": str(self.baseline_dir) if self.baseline_dir else None,
            "report": str(self.report) if self.report else None,
            "event_id": self.event_id,
            "event_error": self.event_error,
            "comparison": self.comparison.to_dict() if self.comparison else None,
        }


def find_baseline(root: str | Path, experiment_name: str) -> LoadedRun | None:
    """The newest finished run (one with a summary) of the same experiment under ``root``."""
    for run in list_runs(root):  # newest first
        if run.summary is not None and run.experiment_name == experiment_name:
            return run
    return None


def resolve_baseline(spec: str, root: str | Path, experiment_name: str) -> LoadedRun | None:
    """``last`` -> newest previous run of the experiment (None if there is none); else a run folder."""
    if spec == "last":
        return find_baseline(root, experiment_name)
    path = find_run_dir(spec, root)
    if path is None:
        raise CapacityError(f"--baseline {spec!r}: no such run folder (give 'last' or a results/<run_id> folder)")
    run = load_run(path)
    if run.summary is None:
        raise CapacityError(f"--baseline {spec!r}: the run has no summary.json (it did not finish)")
    return run


def default_search(exp: Experiment, results_root: Path, json_mode: bool, console: Console | None) -> RunSummary:
    """The real search, as ``capacity search`` runs it."""
    from capacity.search.hold_tasks import run_held_search

    options = SearchOptions(results_root=results_root, json_mode=json_mode, command="capacity nightly")
    return run_held_search(exp, options, console)


def datadog_keys_set() -> bool:
    return bool(os.environ.get("DD_API_KEY")) and bool(os.environ.get("DD_APP_KEY"))


def default_event(exp: Experiment, title: str, text: str, tags: list[str]) -> str | None:
    """Post a Datadog event through the experiment's metrics settings (site, URL) and env keys."""
    from capacity.observe import build_source

    source = build_source(exp)
    if source is None:
        return None
    try:
        result: str | None = source.post_event(title, text, tags)
    finally:
        close = getattr(source, "close", None)
        if callable(close):
            close()
    return result


def event_text(outcome: NightlyOutcome, exp: Experiment) -> tuple[str, str, list[str]]:
    """Title, body and tags of the nightly event (no secrets: ids, figures and the verdict only)."""
    title = f"capacity nightly: {exp.name}: {outcome.verdict}"
    body = f"{outcome.reason}\nrun: {outcome.run_id}"
    if outcome.baseline_dir is not None:
        body += f"\nbaseline: {outcome.baseline_dir.name}"
    tags = [
        f"experiment:{exp.name}",
        f"run_id:{outcome.run_id}",
        f"verdict:{outcome.verdict}",
        "capacity:nightly",
    ]
    return title, body, tags


def run_nightly(
    exp: Experiment,
    *,
    baseline: str = "last",
    max_drop_pct: float = 10.0,
    results_root: Path = Path("results"),
    json_mode: bool = False,
    search: SearchFn | None = None,
    post_event: EventFn | None = None,
) -> NightlyOutcome:
    """Search, compare with the baseline, write the report and ``comparison.json``, post the event."""
    if max_drop_pct < 0 or max_drop_pct >= 100:
        raise CapacityError(f"--max-drop {max_drop_pct:g}: expected a percentage in [0, 100)")
    base = resolve_baseline(baseline, results_root, exp.name)
    summary = (search or default_search)(exp, results_root, json_mode, None)  # no live progress table
    run_dir = Path(summary.results_dir)
    comparison: Comparison | None = None
    if base is None or base.summary is None:
        verdict = "inconclusive"
        reason = f"no previous run of experiment {exp.name!r} in {results_root} to compare with"
    else:
        comparison = compare_runs(base.summary, summary, max_drop_pct)
        verdict, reason = comparison.verdict, comparison.reason
    report = _ensure_report(run_dir)
    outcome = NightlyOutcome(
        verdict=verdict,
        exit_code=EXIT_CODES[verdict],
        reason=reason,
        run_id=summary.run_id,
        run_dir=run_dir,
        baseline_dir=base.path if base is not None else None,
        comparison=comparison,
        report=report,
    )
    if run_dir.is_dir():
        atomic_write_text(run_dir / "comparison.json", json.dumps(outcome.to_dict(), indent=2) + "\n")
    if datadog_keys_set():
        title, text, tags = event_text(outcome, exp)
        try:
            outcome.event_id = (post_event or default_event)(exp, title, text, tags)
        except Exception as exc:  # an event is a courtesy: never change the verdict for it
            # only our own errors' text is shown: a library's message might quote a request
            outcome.event_error = str(exc) if isinstance(exc, CapacityError) else type(exc).__name__
            log.warning("nightly: Datadog event not posted: %s", outcome.event_error)
    return outcome


def _ensure_report(run_dir: Path) -> Path | None:
    html = run_dir / "report.html"
    if html.is_file():
        return html
    if not (run_dir / "manifest.json").is_file():
        return None
    from capacity.report import write_report

    try:
        return write_report(run_dir)
    except CapacityError as exc:
        log.warning("nightly: report not written: %s", exc)
        return None
