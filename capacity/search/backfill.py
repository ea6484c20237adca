"""``capacity metrics backfill``: late metrics filled into a stored run after the fact.

CloudWatch-based ``aws.ecs.service.*`` metrics arrive 10-20 minutes late, so a stage judged at its
end often lacks them. Which stages to fetch again and what counts as a better fetch is observe's
rule (:func:`capacity.observe.refetch.refetch_incomplete`, shared with the search's catch-up pass);
this use case opens the run, builds the source from the run's own experiment and stores what improved.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from capacity.core.errors import CapacityError
from capacity.observe.refetch import due, refetch_incomplete
from capacity.observe.source import MetricsSource, build_source
from capacity.plan.experiment import parse_experiment
from capacity.store import RunStore


@dataclass
class BackfillReport:
    run_dir: Path
    checked: list[int] = field(default_factory=list)
    """Stages whose metrics were incomplete (or never fetched) and were fetched again."""
    updated: list[int] = field(default_factory=list)
    """Stages whose stored metrics improved and were rewritten."""
    before: dict[int, float] = field(default_factory=dict)
    after: dict[int, float] = field(default_factory=dict)
    """Stage -> mean completeness over its metrics, before and after."""
    warnings: list[str] = field(default_factory=list)
    calls: int = 0

    def as_dict(self) -> dict[str, object]:
        return {
            "run_dir": str(self.run_dir),
            "checked": self.checked,
            "updated": self.updated,
            "before": self.before,
            "after": self.after,
            "warnings": self.warnings,
            "calls": self.calls,
        }


def _mean(values: dict[str, float]) -> float:
    return round(sum(values.values()) / len(values), 4) if values else 0.0


def _source_for(path: Path, manifest: dict[str, object]) -> MetricsSource:
    data = manifest.get("experiment")
    if not isinstance(data, dict):
        raise CapacityError(f"{path}: manifest.json has no experiment to take the metrics settings from")
    exp = parse_experiment(data, source=f"{path}/manifest.json")
    if exp.metrics.source == "none":
        raise CapacityError(f"{path}: this run had metrics.source = 'none'; there is nothing to backfill")
    if exp.target.is_sandbox and not os.environ.get("CAPACITY_DATADOG_URL"):
        raise CapacityError(f"{path}: a sandbox run; its metrics ended with the sandbox (nothing to backfill)")
    source = build_source(exp)
    assert source is not None
    return source


def backfill_run(path: Path | str, *, source: MetricsSource | None = None, force: bool = False) -> BackfillReport:
    """Re-fetch (without waiting) every stage with completeness < 1 (every stage with ``force``);
    store what improved. ``source`` defaults to the run's own experiment settings with keys from the
    environment."""
    store = RunStore.open(Path(path))
    report = BackfillReport(run_dir=store.path)
    stages = [r for r in store.stage_results() if due(r, force=force)]
    if not stages:
        return report
    own = source is None
    src = source if source is not None else _source_for(store.path, store.read_json("manifest.json") or {})
    try:
        for x in refetch_incomplete(src, stages, force=force):
            i = x.before.index
            report.checked.append(i)
            report.calls += x.fetched.calls
            report.warnings.extend(f"stage {i}: {w}" for w in x.fetched.warnings)
            report.before[i] = _mean(x.before.metrics_completeness)
            report.after[i] = _mean(x.after.metrics_completeness)
            if x.improved:
                store.update_stage_metrics(i, x.fetched.frame, x.fetched.aggregates, x.fetched.completeness)
                report.updated.append(i)
    finally:
        if own:
            src.close()
    return report
