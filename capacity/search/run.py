"""The search: plan a stage, drive it, observe the server, judge it, store it, decide what next.

``run_search`` sets the run up (everything that can fail without sending load is checked before
the run folder exists) and hands a ``SearchRun`` the stage loop. The run object holds the run's
state once; the stop rules live in ``rules.py``, recovery in ``recovery.py`` and the end of the run
in ``finish.py``. The design is described in docs/design.md.
"""

from __future__ import annotations

import logging
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console

from capacity.core.breach import Breach
from capacity.core.errors import CapacityError
from capacity.core.measurement import StageMeasurement, StageSpec
from capacity.core.models import RunSummary, SecondSample, StageResult
from capacity.core.outcomes import StopReason, Verdict, guard_stop
from capacity.core.signals import InterruptFlag, catch_interrupts
from capacity.judge.guards import judge_window
from capacity.judge.recovery import Baseline
from capacity.judge.verdict import judge_measurement
from capacity.plan.budget import check_test_data_budget
from capacity.plan.experiment import Experiment
from capacity.plan.strategies import Probe, Strategy, make_strategy
from capacity.plan.target import LiveTarget, live_target
from capacity.search import stop_rules as rules
from capacity.search.baseline import measure_baseline
from capacity.search.events import RunEvents
from capacity.search.finish import RunState, finish_run, result_text
from capacity.search.options import SearchOptions
from capacity.search.progress import Progress
from capacity.search.recovery_wait import wait_for_recovery
from capacity.search.target_setup import check_allowed_host, resolve_target
from capacity.store import RunStore

if TYPE_CHECKING:
    import pandas as pd

    from capacity.load.driver import LoadDriver
    from capacity.observe.source import MetricsSource

log = logging.getLogger("capacity.search")

SANDBOX_KEYS = ("sandbox-api-key", "sandbox-app-key")
"""Dummy credentials for the sandbox's Datadog-compatible endpoint (not secrets)."""


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
        p = open_run(exp, opts, stack)
        run = SearchRun(
            exp,
            opts,
            console,
            p.driver,
            p.source,
            p.store,
            p.flag,
            p.base_url,
            p.baseline_ms,
            p.truth,
            baseline=p.baseline,
        )
        return run.run()
    raise AssertionError("unreachable")  # pragma: no cover


@dataclass
class RunParts:
    """What a run (a search or a soak) works with once its set-up passed: closed by the caller's stack."""

    driver: LoadDriver
    source: MetricsSource | None
    store: RunStore
    flag: InterruptFlag
    base_url: str
    """The target as shown and stored (``${NAME}`` references kept)."""
    baseline_ms: float | None
    truth: dict[str, object] | None
    baseline: Baseline | None = None
    """The target before stage 1 (queue, backlog, probe latency): what recovery returns to."""


def open_run(exp: Experiment, opts: SearchOptions, stack: ExitStack) -> RunParts:
    """Check everything that can fail without sending load, then create the run folder (see ``run_search``)."""
    flag = stack.enter_context(catch_interrupts())
    shown_url, truth = stack.enter_context(resolve_target(exp))  # shown and stored: ${NAME}s kept
    live = live_target(exp.target, shown_url, file=exp.source_file)
    base_url = live.base_url
    check_allowed_host(exp, base_url, opts.allow_hosts if not exp.target.is_sandbox else ("127.0.0.1",))
    source = _metrics_source(exp, base_url)
    if source is not None:
        stack.callback(source.close)
        source.preflight()
        if opts.require_metrics:
            from capacity.search.require_metrics import require_guard_metrics

            require_guard_metrics(source, exp)
    driver = _start_driver(exp, opts, live, stack)
    baseline = measure_baseline(driver, source, exp)
    store = RunStore.create(
        opts.results_root,
        exp,
        run_id=opts.run_id,
        command=opts.command,
        target=shown_url,
        extra={"truth": truth, "workers": opts.workers, "baseline": baseline.to_dict()},
    )
    handler = _attach_log(store.path / "run.log")
    stack.callback(_detach_log, handler)
    return RunParts(driver, source, store, flag, shown_url, baseline.probe_p50_ms, truth, baseline)


@dataclass
class Observed:
    """A stage's server side: aggregates, completeness, the guards they break, the raw frame."""

    metrics: dict[str, float | None] = field(default_factory=dict)
    completeness: dict[str, float] = field(default_factory=dict)
    breaches: list[Breach] = field(default_factory=list)
    frame: pd.DataFrame | None = None
    extra: list[str] = field(default_factory=list)
    """Reasons beyond the guards (metrics that never arrived)."""
    blind: list[str] = field(default_factory=list)
    """Queries of set guards that had no data (those guards judged nothing)."""


class SearchRun:
    """One search in progress: the stage loop and the state it builds, from the first stage to the summary."""

    metrics_wait = True
    """Wait for each stage's server metrics to be complete (a soak's back-to-back segments do not)."""

    def __init__(
        self,
        exp: Experiment,
        opts: SearchOptions,
        console: Console,
        driver: LoadDriver,
        source: MetricsSource | None,
        store: RunStore,
        flag: InterruptFlag,
        base_url: str,
        baseline_ms: float | None,
        truth: dict[str, object] | None,
        *,
        baseline: Baseline | None = None,
    ) -> None:
        self.exp, self.opts, self.console = exp, opts, console
        self.baseline = baseline
        self.driver, self.source, self.store, self.flag = driver, source, store, flag
        self.base_url, self.baseline_ms = base_url, baseline_ms
        self.state = RunState(truth=truth)
        self.show = not opts.json_mode
        self.events = RunEvents(source, exp, store)
        self.progress = Progress(console, enabled=self.show, title=f"{exp.name}: {exp.stages.strategy} search")
        self.started = datetime.now(UTC)

    # ------------------------------------------------------------------------------------ the run
    def run(self) -> RunSummary:
        exp, state = self.exp, self.state
        log.info("run %s: experiment %s against %s", self.store.run_id, exp.name, self.base_url)
        log.info("baseline probe latency %s ms", self.baseline_ms)
        if self.show:
            self.console.print(f"[bold]capacity search[/] {exp.name} -> {self.base_url}  (results: {self.store.path})")
        self.events.post("run start", f"capacity search {exp.name} started", [])
        try:
            with self.progress:
                self.stage_loop()
            if self.source is not None and exp.metrics.catch_up and not self.flag:
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
            result = self.run_stage(self.stage_spec(probe, len(state.results)), probe)
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
        decision = rules.after_stage(result, interrupted=bool(self.flag))
        if decision.warning:
            state.warnings.append(decision.warning)
        if decision.stop or not decision.judged:
            state.stopped_reason = decision.stop or ""
            return
        passed = result.verdict is Verdict.PASS
        strategy.record(probe.rate, passed, goodput=result.achieved_rps)
        if rules.stops_on_failure(passed, strategy=self.exp.stages.strategy, strategy_stop_reason=strategy.stop_reason):
            state.stopped_reason = guard_stop(state.first_breach.get(result.index))
            return
        recovery = wait_for_recovery(
            self.driver, self.source, self.baseline_ms, self.exp, self.flag, self.progress, baseline=self.baseline
        )
        if not recovery.ok:
            state.stopped_reason = StopReason.INTERRUPTED if self.flag else StopReason.NO_RECOVERY
            state.warnings.append(recovery.detail)

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

    def max_inflight_for(self, rate: float) -> int:
        """The in-flight cap of a stage at ``rate``: the CLI's, the plan's, or enough for the SLO at that rate."""
        from capacity.load.schedule import suggest_max_inflight

        exp = self.exp
        return int(
            self.opts.max_inflight
            or exp.stages.max_inflight
            or suggest_max_inflight(rate, exp.guards.slo_p95_ms or 1000.0, exp.target.timeout_s)
        )

    # ---------------------------------------------------------------------------------- one stage
    def run_stage(self, spec: StageSpec, probe: Probe) -> StageResult:
        """Drive one stage (aborting it on a sustained breach), observe the server, judge and store it."""
        live: list[Breach] = []
        guards, progress = self.exp.guards, self.progress

        def on_second(samples: list[SecondSample]) -> str | None:
            progress.tick(spec.index, spec.target_rps, probe.kind, samples)
            breaches = judge_window(samples, guards)
            if breaches:
                live.extend(breaches)
                log.warning("stage %d aborted: %s", spec.index, "; ".join(b.text for b in breaches))
                return breaches[0].code
            return None

        log.info("stage %d: %.2f req/s (%s: %s)", spec.index, spec.target_rps, probe.kind, probe.why)
        meas = self.driver.run_stage(spec, on_second)
        seen = self.observe(meas)
        self.state.warnings.extend(meas.warnings)
        check = self.opts.stage_check
        drift = check(meas.measure_from, meas.ended_at, seen.frame) if check and not meas.interrupted else None
        result, breaches = judge_measurement(
            meas,
            guards,
            probe=probe.kind,
            live_breaches=live,
            metric_breaches=seen.breaches,
            metrics=seen.metrics,
            completeness=seen.completeness,
            extra_reasons=seen.extra,
            blind=seen.blind,
            drift=drift,
        )
        if breaches:
            self.state.first_breach[result.index] = breaches[0].code
        self.store.write_stage(result, list(meas.seconds), seen.frame, _encode_histogram(meas))
        progress.stage_done(result)
        log.info("stage %d: %s %s", spec.index, result.verdict, "; ".join(result.reasons))
        return result

    def observe(self, meas: StageMeasurement) -> Observed:
        """Server metrics over the window load was offered (after arrivals stop, the pool idles and a
        trailing snapshot would pull the stage's utilisation down)."""
        if self.source is None or meas.interrupted:
            return Observed()
        from capacity.judge.server_guards import blind_queries, metric_guard_breaches
        from capacity.observe.source import StageWindow

        self.progress.note(f"stage {meas.spec.index}: fetching server metrics")
        window_end = meas.load_ended_at or meas.ended_at
        window_start = meas.measure_from if meas.requests > 0 and meas.measure_from < window_end else meas.started_at
        window = StageWindow(stage=meas.spec.index, start=window_start, end=window_end)
        sm = self.source.fetch_stage(window, wait=self.metrics_wait)
        self.state.warnings.extend(f"stage {meas.spec.index}: {w}" for w in sm.warnings)
        extra = [f"metrics missing: {', '.join(sorted(sm.missing))}"] if sm.missing else []
        blind = blind_queries(self.exp.guards, sm.completeness, sm.missing, sm.pending)
        if blind:
            self.state.warnings.append(f"stage {meas.spec.index}: blind guard(s), no data for: {', '.join(blind)}")
        self.progress.note("")
        return Observed(
            dict(sm.aggregates),
            dict(sm.completeness),
            metric_guard_breaches(sm.aggregates, self.exp.guards),
            sm.frame,
            extra,
            blind,
        )

    # ----------------------------------------------------------------------------- after the loop
    def catch_up(self) -> None:
        """Late metrics: re-fetch stages whose window was incomplete, without waiting; re-judge blind ones."""
        from capacity.search.late import catch_up

        assert self.source is not None
        catch_up(self.source, self.exp, self.store, self.state)

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


# --------------------------------------------------------------------------------------- set-up
def _start_driver(exp: Experiment, opts: SearchOptions, live: LiveTarget, stack: ExitStack) -> LoadDriver:
    """Check the test data suffices, start the load driver, check the target answers and every endpoint
    works (smoke preflight), then start its workers: all before any stage."""
    from capacity.load.driver import LoadDriver
    from capacity.load.settings import ConnectionSettings, GeneratorSettings, WorkerSettings

    if not opts.locustfile:  # a locustfile's tasks consume no records of ours
        check_test_data_budget(exp)
    t = exp.target
    connection = ConnectionSettings(
        base_url=live.base_url, headers=live.headers, timeout_s=t.timeout_s, verify_tls=t.verify_tls
    )
    settings = GeneratorSettings(
        connection=connection, workload=exp.workload, locustfile=opts.locustfile, source_file=exp.source_file
    )
    workers = WorkerSettings(
        workers=opts.workers,
        expect_remote_workers=opts.expect_remote_workers,
        master_bind=opts.master_bind,
        master_port=opts.master_port,
        allow_cleartext=opts.allow_cleartext_workers,
    )
    driver = LoadDriver(settings, workers=workers, auth=live.auth, health_path=t.health_path)
    stack.enter_context(driver)
    driver.preflight()
    driver.smoke()
    driver.start()
    return driver


def _metrics_source(exp: Experiment, base_url: str) -> MetricsSource | None:
    if exp.metrics.source == "none":
        return None
    from capacity.observe import build_source

    if exp.target.is_sandbox:
        return build_source(exp, url_override=base_url, api_key=SANDBOX_KEYS[0], app_key=SANDBOX_KEYS[1])
    return build_source(exp)


def _encode_histogram(meas: StageMeasurement) -> str | None:
    try:
        enc = meas.histogram.encode()
    except Exception:  # an empty histogram cannot always be encoded
        return None
    return enc.decode() if isinstance(enc, bytes) else str(enc)


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
