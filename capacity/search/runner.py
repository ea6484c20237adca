"""The search: plan a stage, drive it, observe the server, judge it, store it, decide what next.

This module is the pipeline's spine; every step it calls lives in its own package. What it owns is
the order of things and the safety rules between them: the host allow-list, preflight before any
load, one stage at a time, no stage above the first failing rate, recovery before the next stage,
the run's time budget, and a summary on disk whatever happens (interrupts included).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console

from capacity.errors import CapacityError, ExperimentError
from capacity.judge.guards import Breach, judge_window
from capacity.judge.verdict import judge_measurement
from capacity.models import Estimate, RunSummary, SecondSample, StageResult
from capacity.plan.experiment import Experiment
from capacity.plan.strategies import Probe, make_strategy
from capacity.search.progress import Progress
from capacity.signals import InterruptFlag, catch_interrupts
from capacity.store import RunStore

log = logging.getLogger("capacity.search")

SANDBOX_KEYS = ("sandbox-api-key", "sandbox-app-key")
"""Dummy credentials for the sandbox's Datadog-compatible endpoint (not secrets)."""


@dataclass
class SearchOptions:
    """Run-time choices that are not part of the experiment file."""

    results_root: Path = Path("results")
    json_mode: bool = False
    workers: int = 0
    expect_remote_workers: int = 0
    master_bind: str = "127.0.0.1"
    master_port: int = 0
    allow_hosts: tuple[str, ...] = ()
    locustfile: str | None = None
    max_inflight: int | None = None
    run_id: str | None = None
    write_report: bool = True
    command: str = ""


@dataclass
class _RunState:
    results: list[StageResult] = field(default_factory=list)
    search_path: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    stopped_reason: str = ""
    truth: dict[str, Any] | None = None
    first_breach: dict[int, str] = field(default_factory=dict)
    """Stage index -> code of the guard that failed it first (``guard:<code>`` in ``stopped_reason``)."""


# ----------------------------------------------------------------------------------------- safety
def check_allowed_host(exp: Experiment, base_url: str, extra_allowed: tuple[str, ...] = ()) -> None:
    """Refuse any target host not in the experiment's allow-list or ``--allow-host``."""
    from urllib.parse import urlsplit

    host = (urlsplit(base_url).hostname or "").lower()
    allowed = {h.lower() for h in (*exp.target.allowed_hosts, *extra_allowed)}
    if host not in allowed:
        raise ExperimentError(
            f"target host {host!r} is not in allowed_hosts {sorted(allowed)}; add it there or pass --allow-host {host}",
            file=exp.source_file,
            key="target.allowed_hosts",
        )


@contextmanager
def resolve_target(exp: Experiment) -> Iterator[tuple[str, dict[str, Any] | None]]:
    """Yield (base URL, truth); for ``sandbox://`` start the built-in sandbox for the block's duration."""
    if not exp.target.is_sandbox:
        yield exp.target.base_url, None
        return
    from capacity.sandbox import SandboxConfig, run_sandbox, truth

    td = exp.workload.test_data
    # the sandbox must know every synthetic appointment the workload will address
    same_records = {"records": td.records, "seed": td.seed} if td.source == "sandbox" else {}
    config = SandboxConfig.from_settings(exp.sandbox, **same_records)
    with run_sandbox(config) as sb:
        yield sb.base_url, truth(config).as_dict()


# ------------------------------------------------------------------------------------ the search
def run_search(exp: Experiment, *, options: SearchOptions | None = None, console: Console | None = None) -> RunSummary:
    """Run an experiment end to end; the run folder holds every finished stage whatever happens.

    Everything that can fail without sending load (host allow-list, metrics credentials, workers
    joining, the target answering) is checked before the run folder is created, so a bad setup
    leaves nothing behind but one error line.
    """
    opts = options or SearchOptions()
    console = console if console is not None else Console(stderr=True)
    show = not opts.json_mode
    with ExitStack() as stack:
        flag = stack.enter_context(catch_interrupts())
        base_url, truth = stack.enter_context(resolve_target(exp))
        check_allowed_host(exp, base_url, opts.allow_hosts if not exp.target.is_sandbox else ("127.0.0.1",))
        source = _metrics_source(exp, base_url)
        if source is not None:
            stack.callback(source.close)
            source.preflight()
        driver = _start_driver(exp, opts, base_url, stack)
        baseline_ms = driver.probe_latency_ms(n=5)
        store = RunStore.create(
            opts.results_root,
            exp,
            run_id=opts.run_id,
            command=opts.command,
            target=base_url,
            extra={"truth": truth, "workers": opts.workers},
        )
        handler = _attach_log(store.path / "run.log")
        stack.callback(_detach_log, handler)
        state = _RunState(truth=truth)
        started = datetime.now(UTC)
        log.info("run %s: experiment %s against %s", store.run_id, exp.name, base_url)
        log.info("baseline probe latency %s ms", baseline_ms)
        if show:
            console.print(f"[bold]capacity search[/] {exp.name} -> {base_url}  (results: {store.path})")
        if source is not None:
            _event(source, exp, store, "run start", f"capacity search {exp.name} started", [])
        try:
            progress = Progress(console, enabled=show, title=f"{exp.name}: {exp.stages.strategy} search")
            with progress:
                _stage_loop(exp, opts, driver, source, store, state, flag, progress, baseline_ms)
            if source is not None and exp.metrics.catch_up and not flag:
                _catch_up(source, store, state)
        except CapacityError:
            state.stopped_reason = state.stopped_reason or "error"
            _finish(exp, opts, store, state, base_url, started, console, show=False)
            raise
        summary = _finish(exp, opts, store, state, base_url, started, console, show=show)
        if source is not None:
            _event(source, exp, store, "result", _result_text(summary), [f"stopped:{summary.stopped_reason}"])
        return summary
    raise AssertionError("unreachable")  # pragma: no cover


def _start_driver(exp: Experiment, opts: SearchOptions, base_url: str, stack: ExitStack) -> Any:
    """Start the load driver (and its workers) and check the target answers, before any stage."""
    from capacity.load.driver import LoadDriver

    driver = LoadDriver(
        base_url,
        exp.workload,
        headers=exp.target.headers,
        timeout_s=exp.target.timeout_s,
        workers=opts.workers,
        locustfile=opts.locustfile or exp.workload.locustfile,
        source_file=exp.source_file,
        master_bind=opts.master_bind,
        master_port=opts.master_port,
        expect_remote_workers=opts.expect_remote_workers,
        health_path=exp.target.health_path,
        verify_tls=exp.target.verify_tls,
    )
    stack.enter_context(driver)
    driver.start()
    driver.preflight()
    return driver


def _result_text(summary: RunSummary) -> str:
    def f(v: float | None) -> str:
        return "n/a" if v is None else f"{v:.1f} req/s"

    return (
        f"saturation {f(summary.saturation_rps)}, SLO capacity {f(summary.slo_capacity_rps)}, "
        f"knee {f(summary.knee_rps)}; stopped: {summary.stopped_reason}"
    )


def _stage_loop(
    exp: Experiment,
    opts: SearchOptions,
    driver: Any,
    source: Any,
    store: RunStore,
    state: _RunState,
    flag: InterruptFlag,
    progress: Progress,
    baseline_ms: float | None,
) -> None:
    """Stage after stage until the strategy, a guard, a budget, recovery or the user says stop."""
    from capacity.load.driver import StageSpec, suggest_max_inflight

    plan = exp.stages
    strategy = make_strategy(plan)
    t0 = time.monotonic()
    index = 0
    while True:
        if flag:
            state.stopped_reason = "interrupted"
            break
        probe = strategy.next_stage()
        if probe is None:
            state.stopped_reason = strategy.stop_reason or "done"
            break
        elapsed = time.monotonic() - t0
        if elapsed + plan.stage_seconds > plan.max_duration_s:
            state.stopped_reason = "max_duration"
            state.warnings.append(f"stopped: the next stage would pass max_duration_s ({plan.max_duration_s:g} s)")
            break
        inflight = (
            opts.max_inflight
            or plan.max_inflight
            or suggest_max_inflight(probe.rate, exp.guards.slo_p95_ms or 1000.0, exp.target.timeout_s)
        )
        spec = StageSpec(
            index=index,
            target_rps=probe.rate,
            duration_s=plan.stage_seconds,
            warmup_s=plan.warmup_seconds,
            arrival=plan.arrival,
            max_inflight=int(inflight),
            seed=plan.seed + index,
        )
        result = _run_one_stage(exp, driver, source, spec, probe, store, progress, state)
        state.results.append(result)
        passed = result.verdict == "pass"
        state.search_path.append(
            {
                "index": index,
                "rate": round(probe.rate, 3),
                "probe": probe.kind,
                "why": probe.why,
                "verdict": result.verdict,
                "reason": result.reasons[0] if result.reasons else "",
            }
        )
        if source is not None:
            _event(
                source,
                exp,
                store,
                f"stage {index}",
                f"stage {index} at {probe.rate:.1f}/s: {result.verdict}",
                [f"stage:{index}"],
            )
        index += 1
        if result.verdict == "interrupted" or flag:
            state.stopped_reason = "interrupted"
            break
        if result.verdict.startswith("invalid"):
            state.stopped_reason = "generator" if "generator" in result.verdict else "worker-lost"
            state.warnings.append(
                f"stage {result.index} was limited by the load generator, not the target: add workers "
                "(--workers N) or remote workers and run again"
                if "generator" in result.verdict
                else f"stage {result.index} lost a load worker"
            )
            if "generator" in result.verdict:
                break
            continue  # a lost worker: the next stage runs on the remaining workers
        strategy.record(probe.rate, passed, goodput=result.achieved_rps)
        if not passed and (plan.strategy != "adaptive" or strategy.stop_reason == "first_stage_failed"):
            state.stopped_reason = _guard_reason(state, result)
            break
        ok, detail = wait_for_recovery(driver, source, baseline_ms, exp, flag, progress)
        if not ok:
            state.stopped_reason = "interrupted" if flag else "no-recovery"
            state.warnings.append(detail)
            break
    if state.stopped_reason in ("resolution", "max_stages", "done") and state.results:
        fails = [r for r in state.results if r.verdict == "fail"]
        if fails and state.stopped_reason == "resolution":
            state.stopped_reason = f"resolution ({_guard_reason(state, fails[0])} at {fails[0].target_rps:g}/s)"
    progress.note("")


def _guard_reason(state: _RunState, result: StageResult) -> str:
    """``guard:<code>`` for the guard that failed a stage first (p95, errors, goodput, queue...)."""
    code = state.first_breach.get(result.index)
    return f"guard:{code}" if code else "guard"


def _run_one_stage(
    exp: Experiment,
    driver: Any,
    source: Any,
    spec: Any,
    probe: Probe,
    store: RunStore,
    progress: Progress,
    state: _RunState,
) -> StageResult:
    live: list[Breach] = []

    def on_second(samples: list[SecondSample]) -> str | None:
        progress.tick(spec.index, spec.target_rps, probe.kind, samples)
        breaches = judge_window(samples, exp.guards)
        if breaches:
            live.extend(breaches)
            log.warning("stage %d aborted: %s", spec.index, "; ".join(b.text for b in breaches))
            return breaches[0].code
        return None

    log.info("stage %d: %.2f req/s (%s: %s)", spec.index, spec.target_rps, probe.kind, probe.why)
    meas = driver.run_stage(spec, on_second)
    metrics: dict[str, float | None] = {}
    completeness: dict[str, float] = {}
    metric_reasons: list[str] = []
    frame = None
    extra: list[str] = []
    if source is not None and not meas.interrupted:
        from capacity.observe import StageWindow, metric_guard_reasons

        progress.note(f"stage {spec.index}: fetching server metrics")
        # the server's window is the time load was offered: after arrivals stop, the pool idles and
        # a trailing snapshot would pull the stage's utilisation down
        window_end = meas.load_ended_at or meas.ended_at
        window_start = meas.measure_from if meas.requests > 0 and meas.measure_from < window_end else meas.started_at
        sm = source.fetch_stage(StageWindow(stage=spec.index, start=window_start, end=window_end))
        metrics, completeness, frame = dict(sm.aggregates), dict(sm.completeness), sm.frame
        metric_reasons = metric_guard_reasons(sm.aggregates, exp.guards)
        for w in sm.warnings:
            state.warnings.append(f"stage {spec.index}: {w}")
        if sm.missing:
            extra.append(f"metrics missing: {', '.join(sorted(sm.missing))}")
        progress.note("")
    if meas.records_exhausted:
        state.warnings.append(f"stage {spec.index}: test records ran out ({meas.records_exhausted} arrivals)")
    result, breaches = judge_measurement(
        meas,
        exp.guards,
        probe=probe.kind,
        live_breaches=live,
        metric_reasons=metric_reasons,
        metrics=metrics,
        completeness=completeness,
        extra_reasons=extra,
    )
    if breaches:
        state.first_breach[result.index] = breaches[0].code
    hist_b64 = _encode_histogram(meas)
    store.write_stage(result, list(meas.seconds), frame, hist_b64)
    progress.stage_done(result)
    log.info("stage %d: %s %s", spec.index, result.verdict, "; ".join(result.reasons))
    return result


def _encode_histogram(meas: Any) -> str | None:
    try:
        enc = meas.histogram.encode()
    except Exception:  # an empty histogram cannot always be encoded
        return None
    return enc.decode() if isinstance(enc, bytes) else str(enc)


# ------------------------------------------------------------------------------------- recovery
def wait_for_recovery(
    driver: Any,
    source: Any,
    baseline_ms: float | None,
    exp: Experiment,
    flag: InterruptFlag,
    progress: Progress | None = None,
) -> tuple[bool, str]:
    """Wait until the target is back to its baseline: probe latency and (with metrics) drained queues.

    Returns (recovered, detail). A target that does not recover in ``recovery_timeout_s`` must not
    get another stage: the previous one is still hurting it.
    """
    plan = exp.stages
    deadline = time.monotonic() + plan.recovery_timeout_s
    limit_ms = None if baseline_ms is None else max(baseline_ms * plan.recovery_latency_factor, baseline_ms + 5.0)
    last = ""
    # server metrics change once per rollup: query them that often, not on every latency probe
    metrics_every = min(float(exp.metrics.rollup_seconds), exp.metrics.poll_interval_s)
    next_metrics_at = 0.0
    queue_ok, queue_detail = True, ""
    while True:
        latency = driver.probe_latency_ms(n=3)
        lat_ok = latency is not None and (limit_ms is None or latency <= limit_ms)
        if time.monotonic() >= next_metrics_at:
            queue_ok, queue_detail = _queues_drained(source, lookback_s=max(3.0, 3.0 * exp.metrics.rollup_seconds))
            next_metrics_at = time.monotonic() + metrics_every
        if lat_ok and queue_ok:
            return True, ""
        last = (
            f"latency {latency if latency is not None else float('nan'):.0f} ms (baseline "
            f"{baseline_ms if baseline_ms is not None else float('nan'):.0f} ms)"
            if not lat_ok
            else queue_detail
        )
        if progress is not None:
            progress.note(f"waiting for recovery: {last}")
        if flag or time.monotonic() >= deadline:
            break
        time.sleep(min(0.25, max(0.05, deadline - time.monotonic())))
    if progress is not None:
        progress.note("")
    return False, f"target did not recover within {plan.recovery_timeout_s:g} s: {last}"


def _queues_drained(source: Any, lookback_s: float = 3.0) -> tuple[bool, str]:
    """Whether the job queue and request backlog are back to (near) empty, by their *latest* points.

    The look-back spans a few rollup intervals (agent metrics in real Datadog arrive in 10-20 s
    buckets, not per second); a queue with no recent point counts as unknown and leaves the decision
    to the latency probe, with a log line saying so.
    """
    if source is None:
        return True, ""
    from datetime import timedelta

    from capacity.observe import StageWindow

    end = datetime.now(UTC)
    try:
        sm = source.fetch_stage(StageWindow(stage=-1, start=end - timedelta(seconds=lookback_s), end=end), wait=False)
    except CapacityError:
        return True, ""
    queue = latest_value(sm.frame, "queue_size")
    backlog = latest_value(sm.frame, "backlog")
    if queue is None:
        log.info("recovery: no job-queue point in the last %.0f s; judging by latency only", lookback_s)
    if queue is not None and queue > 5:
        return False, f"job queue still {queue:.0f} deep"
    if backlog is not None and backlog > 0:
        return False, f"request backlog still {backlog:.0f}"
    return True, ""


def latest_value(frame: Any, metric: str) -> float | None:
    """The largest over groups of each group's latest non-null point of ``metric`` (None if no point)."""
    if frame is None or getattr(frame, "empty", True) or "metric" not in frame.columns:
        return None
    part = frame[(frame["metric"] == metric) & frame["value"].notna()]
    if part.empty:
        return None
    last = part.sort_values("t").groupby("group", sort=False)["value"].last()
    value = float(last.max())
    return None if math.isnan(value) else value


# -------------------------------------------------------------------------------------- metrics
def _metrics_source(exp: Experiment, base_url: str) -> Any:
    if exp.metrics.source == "none":
        return None
    from capacity.observe import build_source

    if exp.target.is_sandbox:
        return build_source(exp, url_override=base_url, api_key=SANDBOX_KEYS[0], app_key=SANDBOX_KEYS[1])
    return build_source(exp)


def _event(source: Any, exp: Experiment, store: RunStore, title: str, text: str, tags: list[str]) -> None:
    if not exp.metrics.events:
        return
    try:
        event_id = source.post_event(
            f"capacity: {title}", text, [f"run_id:{store.run_id}", f"experiment:{exp.name}", *tags]
        )
    except CapacityError as exc:  # events are a courtesy; never stop a run for them
        log.warning("datadog event failed: %s", exc)
        return
    if event_id:
        log.info("datadog event %s: %s", event_id, title)
        manifest = store.read_json("manifest.json") or {}
        events = [*manifest.get("datadog_events", []), {"id_str": event_id, "title": title}]
        store.update_manifest(datadog_events=events)


def _catch_up(source: Any, store: RunStore, state: _RunState) -> None:
    """Late (CloudWatch) metrics: re-fetch stages whose window was incomplete, without waiting."""
    from capacity.observe import StageWindow

    for i, r in enumerate(state.results):
        if not r.metrics_completeness or min(r.metrics_completeness.values()) >= 1.0:
            continue
        if r.measure_from is None or r.ended_at is None:
            continue
        sm = source.fetch_stage(StageWindow(stage=r.index, start=r.measure_from, end=r.ended_at), wait=False)
        if sum(sm.completeness.values()) > sum(r.metrics_completeness.values()):
            store.update_stage_metrics(r.index, sm.frame, sm.aggregates, sm.completeness)
            state.results[i] = r.model_copy(
                update={
                    "metrics": {**r.metrics, **sm.aggregates},
                    "metrics_completeness": {**r.metrics_completeness, **sm.completeness},
                }
            )


# ------------------------------------------------------------------------------------ finishing
def _finish(
    exp: Experiment,
    opts: SearchOptions,
    store: RunStore,
    state: _RunState,
    base_url: str,
    started: datetime,
    console: Console,
    *,
    show: bool,
) -> RunSummary:
    """Analyse, size, write summary and report. Runs on every exit path (interrupts included)."""
    summary = RunSummary(
        run_id=store.run_id,
        results_dir=str(store.path),
        experiment=exp.name,
        target=base_url,
        stopped_reason=state.stopped_reason or "done",
        stages=state.results,
        started_at=started,
        ended_at=datetime.now(UTC),
        search_path=state.search_path,
        truth=state.truth,
        warnings=state.warnings,
    )
    try:
        summary = _with_analysis(exp, store, summary)
    except CapacityError as exc:
        summary.warnings.append(f"analysis: {exc}")
    store.write_summary(summary)
    store.finish()
    if opts.write_report:
        try:
            from capacity.report import write_report

            write_report(store.path)
        except CapacityError as exc:
            log.warning("report not written: %s", exc)
    if show:
        from capacity.search.outcome import print_outcome

        print_outcome(console, summary)
    return summary


def _with_analysis(exp: Experiment, store: RunStore, summary: RunSummary) -> RunSummary:

    from capacity.analyse import analyse_run
    from capacity.size import recommend
    from capacity.store import load_run

    if not summary.stages:
        summary.warnings.append("no stage finished: nothing to analyse")
        return summary
    run = load_run(store.path)
    analysis = analyse_run(run.stages, run.seconds, exp.guards)
    store.write_json("analysis.json", analysis.to_dict())
    saturation = _headline_saturation(analysis.saturation, analysis.queueing)
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
            rec = recommend(analysis, run.stages, exp.cluster, exp.production, exp.workload)
        except CapacityError as exc:  # e.g. no production peak given: the capacity figures still stand
            summary.warnings.append(f"no recommendation: {exc}")
        else:
            update["recommendation"] = rec.to_dict()
    return summary.model_copy(update=update)


def _headline_saturation(measured: Estimate, queueing: Estimate | None) -> Estimate:
    """Measured saturation when the run reached it; otherwise the queueing extrapolation (marked as
    such) unless the measured lower bound already contradicts it; otherwise the lower bound."""
    if measured.reached and measured.value is not None:
        return measured
    if (
        queueing is not None
        and queueing.value is not None
        and (measured.value is None or queueing.value >= measured.value)
    ):
        bound = f"measured lower bound {measured.value:.1f} rps" if measured.value is not None else ""
        return queueing.model_copy(update={"note": "; ".join(p for p in (queueing.note, bound) if p)})
    return measured


def _attach_log(path: Path) -> logging.Handler:
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger("capacity")
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    return handler


def _detach_log(handler: logging.Handler) -> None:
    logging.getLogger("capacity").removeHandler(handler)
    handler.close()
