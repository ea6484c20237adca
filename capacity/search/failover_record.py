"""``failover.json``: the verdict, the loss, the periods and the first breach of a failover run.

Read back from the run folder as stored (per-second samples, latency histograms, server metrics),
so the record and a notebook see the same numbers. The first breach's time is found by replaying
the live window guard (``judge_window``, the very rule that stopped the segment) over the stored
seconds; a breach only the whole segment or its server metrics showed is dated at the segment's end.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from capacity.analyze.failover import SegmentSpan, assign_periods, contract_periods, per_task_load, period_figures
from capacity.core.models import SecondSample
from capacity.core.outcomes import Verdict
from capacity.judge.guards import judge_window

if TYPE_CHECKING:
    import pandas as pd
    from hdrh.histogram import HdrHistogram

    from capacity.plan.experiment import Guards

FailoverRun = Any
"""``capacity.search.failover_run.FailoverRun`` (not imported: it imports this module)."""

NOT_REPLACED = "not_replaced"
"""``first_breach.code`` when the service was not back at its desired count within the deadline."""


def _histograms(run: FailoverRun, indices: list[int]) -> dict[int, HdrHistogram]:
    from hdrh.histogram import HdrHistogram

    out: dict[int, HdrHistogram] = {}
    for i in indices:
        path = run.store.path / "histograms" / f"stage-{i:03d}.hdr"
        if path.is_file():
            try:
                out[i] = HdrHistogram.decode(path.read_text().strip())
            except Exception:  # a damaged histogram: that segment's percentiles are left out
                continue
    return out


def _samples(seconds: pd.DataFrame, index: int) -> list[SecondSample]:
    rows = seconds[seconds["stage"] == index].sort_values("t")
    records: list[dict[str, Any]] = [{str(k): v for k, v in r.items()} for r in rows.to_dict("records")]
    return [
        SecondSample.model_validate({k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in r.items()})
        for r in records
    ]


def breach_time(seconds: pd.DataFrame, index: int, guards: Guards) -> tuple[float | None, str | None]:
    """When the live window guard first broke in stage ``index`` (end of that second) and its code."""
    samples = _samples(seconds, index)
    for k in range(1, len(samples) + 1):
        found = judge_window(samples[:k], guards)
        if found:
            return samples[k - 1].t + 1.0, found[0].code
    return (samples[-1].t + 1.0 if samples else None), None


def first_breach(run: FailoverRun, seconds: pd.DataFrame, ref: float) -> dict[str, Any] | None:
    """The first failed segment's breach (code, seconds after the loss); else the missing replacement."""
    failed = next((r for r in run.state.results if r.verdict is Verdict.FAIL), None)
    if failed is not None:
        at, code = breach_time(seconds, failed.index, run.exp.guards)
        code = code or run.state.first_breach.get(failed.index) or (failed.reasons[0] if failed.reasons else "fail")
        return {"code": code, "at_s_after_loss": None if at is None else round(at - ref, 3)}
    if run.not_replaced:
        return {"code": NOT_REPLACED, "at_s_after_loss": run.failover_plan.deadline_s}
    return None


def _verdict(run: FailoverRun, stopped: str, breach: dict[str, Any] | None) -> str:
    if stopped == "interrupted":
        return "interrupted"
    whole = run.watch is not None and run.watch.back_at is not None
    return "pass" if breach is None and whole and stopped == "done" else "fail"


def _formula_per_task(truth: dict[str, Any] | None, surviving: int) -> float | None:
    """The sandbox's pool capacity per task with ``surviving`` tasks (its formula), when it is the sandbox."""
    by = (truth or {}).get("by_app_tasks") or {}
    rps = by.get(str(surviving))
    return float(rps) / surviving if rps and surviving > 0 else None


def failover_record(run: FailoverRun, stopped: str) -> dict[str, Any]:
    """Everything ``failover.json`` holds; its first five keys are the ``--json`` contract."""
    from capacity.store import load_run

    loaded = load_run(run.store.path)
    seconds, plan, w = loaded.seconds, run.failover_plan, run.watch
    lost_at = w.lost_at if w is not None else None
    back_at = w.back_at if w is not None else None
    spans = spans_of(seconds)
    periods = assign_periods(spans, lost_at, back_at)
    figures = period_figures(seconds, loaded.metrics, _histograms(run, [s.index for s in spans]), periods, lost_at)
    ref = lost_at if lost_at is not None else (spans[0].start + plan.loss_segment * plan.segment_s if spans else 0.0)
    breach = first_breach(run, seconds, ref) if not seconds.empty or run.not_replaced else None
    per_task: dict[str, Any] = per_task_load(figures.get("during"), run.surviving, plan.per_task_capacity_rps)
    per_task["capacity_source"] = plan.per_task_source or None
    per_task["sandbox_formula_rps_per_task"] = _formula_per_task(run.state.truth, run.surviving)
    return {
        "verdict": _verdict(run, stopped, breach),
        "lost_tasks": [t.arn for t in run.lost],
        "replaced_after_s": None if back_at is None or lost_at is None else round(back_at - lost_at, 3),
        "periods": contract_periods(figures),
        "first_breach": breach,
        "stopped_reason": stopped,
        "control": run.control.kind,
        "lost_zones": [t.zone for t in run.lost],
        "surviving_tasks": run.surviving,
        "lost_at": lost_at,
        "back_at": back_at,
        "not_replaced": run.not_replaced,
        "period_detail": figures,
        "per_task": per_task,
        "timeline": w.timeline() if w is not None else [],
        "plan": plan.as_dict(),
    }


def spans_of(seconds: pd.DataFrame) -> list[SegmentSpan]:
    """Each stored segment's wall-clock span, from its per-second samples."""
    if seconds.empty:
        return []
    g = seconds.groupby("stage")["t"].agg(["min", "max"])
    return [SegmentSpan(int(str(i)), float(r["min"]), float(r["max"]) + 1.0) for i, r in g.iterrows()]
