"""``capacity scale``: a full search at each staging app task count, then capacity fitted against tasks.

For each size the cluster is set to that many app tasks (the built-in sandbox by its settings; an
ECS service through the AWS API, autoscaling suspended, then restored whatever happens), the count
is confirmed from the metrics, and ``run_search`` measures it; a stage during which the count
drifts is ``invalid: task drift`` and ends that size's search. X(N), each size's SLO capacity (the
rate every guard held at: the figure the linear rule sizes from, never saturation) with its interval,
is fitted with the USL and production is sized off the curve beside the base size's own
recommendation (``capacity.size.curve``, ``capacity.size.series``). ``repeat`` measures each size
that many times: the replicates' spread enters the fit's uncertainty. Everything is stored under
``<results>/<series_id>/``: one run folder per size and ``scaling.json``; see docs/design.md.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from scipy import stats

from capacity.analyze.shared_resource import peak_stage_metrics, shared_resource
from capacity.cluster.ecs import EcsService
from capacity.core.errors import CapacityError, ExperimentError
from capacity.core.models import RunSummary
from capacity.core.outcomes import Cause, StopReason
from capacity.core.signals import InterruptFlag, catch_interrupts
from capacity.plan.experiment import Experiment
from capacity.search.options import SearchOptions
from capacity.search.run import run_search
from capacity.search.scale_control import (
    ClusterControl,
    EcsControl,
    SandboxControl,
    confirm_from_metrics,
    metrics_drift,
)
from capacity.size.curve import CurveFit, CurveSizing, SizePoint, fit_curve, leave_one_out, size_from_curve
from capacity.size.series import series_recommendation
from capacity.store import load_run
from capacity.store.run_store import new_run_id
from capacity.store.scaling_series import write_scaling

log = logging.getLogger("capacity.scale")

START_FRACTION = 0.7
"""Each size after the first starts its search at this share of the previous size's saturation."""


@dataclass
class SizeResult:
    """One size of the series: what its search measured."""

    app_tasks: int
    run_id: str
    saturation_rps: float | None = None
    slo_capacity_rps: float | None = None
    interval: list[float | None] = field(default_factory=lambda: [None, None])
    reached: bool = False
    stopped_reason: str = ""
    drifted: bool = False
    throughput_rps: float | None = None
    """X(N) for the fit: the highest goodput a valid stage sustained."""
    throughput_interval: list[float | None] = field(default_factory=lambda: [None, None])
    capacity_rps: float | None = None
    """X(N) for the fit: the SLO capacity (reached) of this size's search."""
    capacity_interval: list[float | None] = field(default_factory=lambda: [None, None])
    replicate: int = 0
    recommendation: dict[str, Any] | None = field(default=None, repr=False)
    """The size's own (linear) recommendation, as its search wrote it."""
    peak_metrics: dict[str, float | None] = field(default_factory=dict)
    """Server figures of the peak stage (what ``shared_resource`` compares across sizes)."""
    bottleneck: dict[str, Any] | None = None
    """What limited this size's first failing stage (``capacity.analyze.bottleneck``)."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "bottleneck": self.bottleneck,
            "app_tasks": self.app_tasks,
            "saturation_rps": self.saturation_rps,
            "slo_capacity_rps": self.slo_capacity_rps,
            "interval": list(self.interval),
            "run_id": self.run_id,
            "reached": self.reached,
            "stopped_reason": self.stopped_reason,
            "drifted": self.drifted,
            "throughput_rps": self.throughput_rps,
            "throughput_interval": list(self.throughput_interval),
            "capacity_rps": self.capacity_rps,
            "capacity_interval": list(self.capacity_interval),
            "replicate": self.replicate,
        }

    @property
    def usable(self) -> bool:
        return self.capacity_rps is not None and not self.drifted


@dataclass
class ScaleOptions:
    """Run-time choices of a scale run; ``search`` is the template of every size's search options."""

    sizes: list[int]
    search: SearchOptions = field(default_factory=SearchOptions)
    series_id: str | None = None
    steady_timeout_s: float = 900.0
    confirm_timeout_s: float | None = None
    """How long the metrics may take to show the new count (default: ``metrics.poll_deadline_s`` + 30 s)."""
    repeat: int = 1
    """Searches per size: with 2+, run-to-run variance enters the fit's uncertainty."""


@dataclass
class ScaleOutcome:
    """A finished (or stopped) series: the sizes, the fit, the recommendation, and where it is stored."""

    series_id: str
    path: Path
    experiment: str
    control: str
    sizes: list[SizeResult] = field(default_factory=list)
    fit: CurveFit | None = None
    sizing: CurveSizing | None = None
    recommendation: dict[str, Any] | None = None
    """The base size's recommendation with the curve beside it (``capacity.size.series``)."""
    leave_one_out: list[dict[str, Any]] = field(default_factory=list)
    fit_check: str = ""
    stopped_reason: str = ""
    warnings: list[str] = field(default_factory=list)
    truth: dict[str, Any] | None = None
    shared_resource: dict[str, Any] | None = None
    """The shared resource whose figures rose with the task count (``capacity.analyze.shared_resource``)."""
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    ended_at: datetime | None = None

    def to_json(self) -> dict[str, Any]:
        """The ``--json`` contract (``sizes``, ``fit``, ``recommendation``) plus the series' own facts."""
        return {
            "sizes": [s.to_dict() for s in self.sizes],
            "fit": self.fit.to_dict() if self.fit is not None else None,
            "recommendation": self.recommendation,
            "leave_one_out": list(self.leave_one_out),
            "fit_check": self.fit_check,
            "series_id": self.series_id,
            "path": str(self.path),
            "experiment": self.experiment,
            "control": self.control,
            "stopped_reason": self.stopped_reason,
            "warnings": list(self.warnings),
            "truth": self.truth,
            "shared_resource": self.shared_resource,
            "started_at": self.started_at.isoformat(),
            "ended_at": self.ended_at.isoformat() if self.ended_at else None,
        }


def control_for(exp: Experiment, *, steady_timeout_s: float = 900.0) -> ClusterControl:
    """The built-in sandbox's own task count, or the ECS service named in ``[cluster]``."""
    c = exp.cluster
    if not c.ecs_service:
        if not exp.target.is_sandbox:
            raise ExperimentError(
                "capacity scale needs [cluster] ecs_cluster and ecs_service to set the task count of a real target",
                file=exp.source_file,
                key="cluster.ecs_service",
            )
        return SandboxControl()
    if exp.target.is_sandbox:
        raise ExperimentError(
            "[cluster] ecs_service is set but target.base_url is sandbox:// (which sets its own task count); "
            "point the target at the service or remove ecs_service",
            file=exp.source_file,
            key="cluster.ecs_service",
        )
    if not c.ecs_cluster:
        raise ExperimentError("ecs_service needs ecs_cluster too", file=exp.source_file, key="cluster.ecs_cluster")
    return EcsControl(
        EcsService(c.ecs_cluster, c.ecs_service, region=c.region or None), steady_timeout_s=steady_timeout_s
    )


def check_sizes(sizes: list[int]) -> list[int]:
    if not sizes or any(n < 1 for n in sizes) or len(set(sizes)) != len(sizes):
        raise CapacityError(f"--sizes must be distinct app task counts >= 1, got {','.join(map(str, sizes))}")
    return sorted(sizes)


def size_experiment(exp: Experiment, n: int, previous: SizeResult | None) -> Experiment:
    """The experiment for one size: ``n`` app tasks (and the sandbox's), starting near the last capacity."""
    sections: dict[str, dict[str, Any]] = {"cluster": {"app_tasks": n}}
    if exp.target.is_sandbox:
        sections["sandbox"] = {"app_tasks": n}
    if previous is not None and previous.saturation_rps:
        start = min(max(exp.stages.start_rps, START_FRACTION * previous.saturation_rps), exp.stages.max_rps)
        sections["stages"] = {"start_rps": round(start, 3)}
    return exp.with_changes(label=f"capacity scale ({n} app tasks)", **sections)


def run_scale(
    exp: Experiment,
    options: ScaleOptions,
    *,
    console: Console | None = None,
    control: ClusterControl | None = None,
) -> ScaleOutcome:
    """Search at every size, fit the curve, size production; the cluster is restored whatever happens."""
    sizes = check_sizes(options.sizes)
    control = control or control_for(exp, steady_timeout_s=options.steady_timeout_s)
    console = console if console is not None else Console(stderr=True)
    series_id = options.series_id or new_run_id(f"{exp.name}-scale")
    out = ScaleOutcome(series_id, options.search.results_root / series_id, exp.name, control.kind)
    out.truth = _truth(exp, sizes)
    consuming = [e.name for e in exp.workload.endpoints if e.consumes]
    if consuming and not exp.target.is_sandbox:
        out.warnings.append(
            f"{', '.join(consuming)} use up records and every size runs on the same test data: the later sizes may "
            "find them used (give the target fresh records per size)"
        )
    with catch_interrupts() as flag:
        try:
            control.prepare()
            _measure_sizes(exp, sizes, options, control, out, flag, console)
        except CapacityError:
            out.stopped_reason = out.stopped_reason or StopReason.ERROR
            raise
        finally:
            out.warnings += control.restore()
            if flag and not out.stopped_reason:
                out.stopped_reason = StopReason.INTERRUPTED
            _conclude(exp, out)
    return out


def _measure_sizes(
    exp: Experiment,
    sizes: list[int],
    options: ScaleOptions,
    control: ClusterControl,
    out: ScaleOutcome,
    flag: InterruptFlag,
    console: Console,
) -> None:
    source = metrics_source(exp) if control.kind == "ecs" else None
    try:
        previous: SizeResult | None = None
        for n in sizes:
            if flag:
                out.stopped_reason = StopReason.INTERRUPTED
                return
            if not options.search.json_mode:
                console.print(f"[bold]capacity scale[/] {exp.name}: {n} app task(s)")
            control.set_size(n, lambda: bool(flag))
            if source is not None and not flag:
                timeout = options.confirm_timeout_s or exp.metrics.poll_deadline_s + 30.0
                note = confirm_from_metrics(source, n, timeout_s=timeout, stop=lambda: bool(flag))
                if note:
                    out.warnings.append(note)
            for rep in range(max(options.repeat, 1)):
                if flag:
                    out.stopped_reason = StopReason.INTERRUPTED
                    return
                size = _one_size(size_experiment(exp, n, previous), n, options, control, out, console, rep)
                if size.stopped_reason == StopReason.INTERRUPTED:
                    out.stopped_reason = StopReason.INTERRUPTED
                    return
            previous = size
        out.stopped_reason = StopReason.DONE
    finally:
        if source is not None:
            source.close()


def _one_size(
    sized: Experiment,
    n: int,
    options: ScaleOptions,
    control: ClusterControl,
    out: ScaleOutcome,
    console: Console,
    rep: int = 0,
) -> SizeResult:
    """One search at ``n`` app tasks on ``sized`` (the experiment at that size: ``size_experiment``)."""

    def stage_check(start: datetime, end: datetime, frame: Any) -> str | None:
        return control.drift(n, start, end) or metrics_drift(n, frame)

    run_id = f"{out.series_id}-n{n}" + (f"-r{rep + 1}" if rep else "")
    opts = replace(options.search, results_root=out.path, run_id=run_id, stage_check=stage_check)
    summary = run_search(sized, options=opts, console=console)
    size = _size_result(n, run_id, summary)
    size.replicate = rep
    size.throughput_rps, size.throughput_interval = peak_throughput(summary, Path(summary.results_dir))
    out.sizes.append(size)
    if size.drifted:
        out.warnings.append(f"{n} app tasks: the task count drifted during a stage; this size is left out of the fit")
    elif size.capacity_rps is None:
        out.warnings.append(f"{n} app tasks: the SLO capacity was not reached (a lower bound); left out of the fit")
    write_scaling(out.path, out.to_json())
    return size


def _size_result(n: int, run_id: str, s: RunSummary) -> SizeResult:
    sat, slo = s.estimates.get("saturation"), s.estimates.get("slo_capacity")
    reached_slo = slo is not None and slo.value is not None and slo.reached
    return SizeResult(
        app_tasks=n,
        run_id=run_id,
        saturation_rps=s.saturation_rps,
        slo_capacity_rps=s.slo_capacity_rps,
        interval=[sat.lo, sat.hi] if sat is not None else [None, None],
        reached=bool(sat is not None and sat.value is not None and sat.reached),
        stopped_reason=s.stopped_reason,
        drifted=s.stopped_reason == StopReason.TASK_DRIFT
        or any(st.verdict.cause is Cause.TASK_DRIFT for st in s.stages),
        capacity_rps=slo.value if reached_slo and slo is not None else None,
        capacity_interval=_capacity_interval(s) if reached_slo and slo is not None else [None, None],
        recommendation=s.recommendation,
        peak_metrics=peak_stage_metrics(s.stages),
        bottleneck=s.bottleneck.model_dump() if s.bottleneck is not None else None,
    )


def _capacity_interval(s: RunSummary) -> list[float | None]:
    """The SLO capacity's interval as the sizing rules widened it (to the search's bracket), else the estimate's."""
    figures = (s.recommendation or {}).get("figures") or {}
    if figures.get("capacity_range_rps"):
        return list(figures["capacity_range_rps"])
    slo = s.estimates["slo_capacity"]
    return [slo.lo, slo.hi]


def peak_throughput(summary: RunSummary, run_dir: Path) -> tuple[float | None, list[float | None]]:
    """The highest goodput a valid stage sustained, and a 95% interval from its per-second goodput."""
    valid = [st for st in summary.stages if st.verdict.is_valid and st.achieved_rps > 0]
    if not valid:
        return None, [None, None]
    best = max(valid, key=lambda st: st.achieved_rps)
    try:
        seconds = load_run(run_dir).seconds
    except CapacityError:
        return best.achieved_rps, [None, None]
    if seconds.empty or "stage" not in seconds.columns:
        return best.achieved_rps, [None, None]
    ok = seconds.loc[(seconds["stage"] == best.index) & (seconds["phase"] == "measure"), "ok"].to_numpy(dtype=float)
    if len(ok) < 2:
        return best.achieved_rps, [None, None]
    half = float(stats.t.ppf(0.975, len(ok) - 1)) * float(np.std(ok, ddof=1)) / math.sqrt(len(ok))
    half = max(half, 1.0 / len(ok))  # whole requests per second: never tighter than one request over the stage
    return best.achieved_rps, [best.achieved_rps - half, best.achieved_rps + half]


def _conclude(exp: Experiment, out: ScaleOutcome) -> None:
    """Fit and size from the usable sizes (if any), then write ``scaling.json`` and its report."""
    usable = [s for s in out.sizes if s.usable]
    points = [SizePoint(s.app_tasks, float(s.capacity_rps or 0), *s.capacity_interval) for s in usable]
    if points:
        out.fit = fit_curve(points)
        out.leave_one_out = leave_one_out(points)
        out.fit_check = _fit_check(out.fit, out.leave_one_out)
        _recommend(exp, out, usable, points)
    found = shared_resource([(s.app_tasks, s.peak_metrics) for s in out.sizes if not s.drifted])
    out.shared_resource = found.to_dict() if found is not None else None
    out.ended_at = datetime.now(UTC)
    out.path.mkdir(parents=True, exist_ok=True)
    write_scaling(out.path, out.to_json())
    try:
        from capacity.report.scale_plots import write_scaling_report

        write_scaling_report(out.path, out.to_json())
    except Exception as exc:  # the figures are a convenience: the series' data is already on disk
        out.warnings.append(f"scaling report not written: {exc}")
        write_scaling(out.path, out.to_json())


def _fit_check(fit: CurveFit, loo: list[dict[str, Any]]) -> str:
    """What checks the fit: leave-one-out with 4+ sizes; with exactly 3, nothing (it is exact)."""
    if loo:
        worst = max(loo, key=lambda r: abs(r["error_pct"]))
        return f"leave-one-out: worst error {worst['error_pct']:+.1f}% (predicting {worst['app_tasks']} tasks)"
    if len(fit.sizes) == 3:
        return "3 sizes: the USL fit is exact and uncheckable; add a 4th size to check it (leave-one-out)"
    return ""


def _recommend(exp: Experiment, out: ScaleOutcome, usable: list[SizeResult], points: list[SizePoint]) -> None:
    """The base size's own recommendation, with the curve read by the same rules beside it."""
    assert out.fit is not None
    base_tasks = min({s.app_tasks for s in usable}, key=lambda n: (abs(n - exp.cluster.app_tasks), -n))
    base = next((s.recommendation for s in usable if s.app_tasks == base_tasks and s.recommendation), None)
    if base is None:
        out.warnings.append(f"{base_tasks} app tasks: its search made no recommendation (no production peak?)")
        return
    demand = float((base.get("figures") or {})["demand_rps"])
    out.sizing = size_from_curve(
        out.fit, points, demand_rps=demand, production=exp.production, staging_tasks=exp.cluster.app_tasks
    )
    out.recommendation = series_recommendation(
        base,
        out.sizing,
        out.fit,
        largest=max(p.app_tasks for p in points),
        cluster=exp.cluster,
        production=exp.production,
    )


def _truth(exp: Experiment, sizes: list[int]) -> dict[str, Any] | None:
    """For the built-in sandbox: its true capacity at each size and its USL parameters (none for Rails)."""
    if not exp.target.is_sandbox or exp.sandbox.stack == "rails":
        return None
    from capacity.sandbox import truth
    from capacity.sandbox.config import sandbox_config_for

    t = truth(sandbox_config_for(exp))
    return {"by_app_tasks": {str(n): t.rps_at(n) for n in sizes}, "usl": t.usl()}


def metrics_source(exp: Experiment) -> Any:
    """The experiment's metrics source (None with source = "none"): the witness of the task count."""
    if exp.metrics.source == "none":
        return None
    from capacity.observe import build_source

    return build_source(exp)


def dry_run_plan(
    exp: Experiment, sizes: list[int], *, steady_timeout_s: float = 900.0, repeat: int = 1
) -> dict[str, Any]:
    """``--dry-run``: the sizes, the worst-case time and the AWS calls, without sending anything."""
    from capacity.plan.strategies import preview

    sizes = check_sizes(sizes)
    control = control_for(exp, steady_timeout_s=steady_timeout_s)
    search_s = preview(exp.stages, exp.stages.recovery_timeout_s).worst_case_s
    settle_s = steady_timeout_s + exp.metrics.poll_deadline_s + 30.0 if control.kind == "ecs" else 0.0
    return {
        "experiment": exp.name,
        "sizes": sizes,
        "control": control.kind,
        "repeat": repeat,
        "worst_case_s": len(sizes) * (repeat * search_s + settle_s),
        "worst_case_per_size_s": {"search": search_s, "settle": settle_s},
        "aws_calls": control.planned_calls(sizes),
    }
