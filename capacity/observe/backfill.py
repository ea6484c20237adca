"""Late metrics after the run: re-fetch stages whose windows were incomplete and update the store.

CloudWatch-based ``aws.ecs.service.*`` metrics arrive 10-20 minutes after the fact, so a stage
judged at its end often lacks them; ``capacity metrics backfill RUN_DIR`` fills them in later.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from capacity.errors import CapacityError
from capacity.models import StageResult
from capacity.observe.source import MetricsSource, StageWindow, build_source
from capacity.plan.experiment import parse_experiment


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


def needs_backfill(result: StageResult) -> bool:
    if result.measure_from is None or result.ended_at is None:
        return False
    comp = result.metrics_completeness
    return not comp or min(comp.values()) < 1.0


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
    """Re-fetch (without waiting) every stage with completeness < 1; store what improved.

    ``source`` defaults to the run's own experiment settings with keys from the environment.
    """
    from capacity.store import RunStore

    store = RunStore.open(Path(path))
    report = BackfillReport(run_dir=store.path)
    stages = [r for r in store.stage_results() if force or needs_backfill(r)]
    if not stages:
        return report
    own = source is None
    src = source if source is not None else _source_for(store.path, store.read_json("manifest.json") or {})
    try:
        for r in stages:
            assert r.measure_from is not None and r.ended_at is not None
            report.checked.append(r.index)
            report.before[r.index] = _mean(r.metrics_completeness)
            sm = src.fetch_stage(StageWindow(stage=r.index, start=r.measure_from, end=r.ended_at), wait=False)
            report.calls += sm.calls
            report.warnings.extend(f"stage {r.index}: {w}" for w in sm.warnings)
            merged = {**r.metrics_completeness, **sm.completeness}
            improved = any(v > r.metrics_completeness.get(k, -1.0) for k, v in sm.completeness.items())
            report.after[r.index] = _mean(merged if improved else r.metrics_completeness)
            if improved:
                store.update_stage_metrics(r.index, sm.frame, sm.aggregates, sm.completeness)
                report.updated.append(r.index)
    finally:
        if own:
            src.close()
    return report
