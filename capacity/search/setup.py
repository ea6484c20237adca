"""A run's set-up: every check that can fail without sending load, then the run folder.

Search, soak and failover open a run the same way (``open_run``): the host allow-list, the metrics
credentials and preflight, the test-data budget, the load driver and its smoke preflight, the workers,
the pre-run baseline; only then is the run folder created, so a bad set-up leaves nothing behind but
one error line. What the run works with afterwards is one ``RunParts``.
"""

from __future__ import annotations

import logging
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from capacity.core.signals import InterruptFlag, catch_interrupts
from capacity.judge.recovery import Baseline
from capacity.plan.budget import check_test_data_budget
from capacity.plan.experiment import Experiment
from capacity.plan.target import LiveTarget, live_target
from capacity.search.baseline import measure_baseline
from capacity.search.options import SearchOptions
from capacity.search.target_setup import check_allowed_host, resolve_target
from capacity.store import RunStore

if TYPE_CHECKING:
    from capacity.load.driver import LoadDriver
    from capacity.observe.source import MetricsSource

SANDBOX_KEYS = ("sandbox-api-key", "sandbox-app-key")
"""Dummy credentials for the sandbox's Datadog-compatible endpoint (not secrets)."""


@dataclass
class RunParts:
    """What a run works with once its set-up passed: closed by the caller's stack."""

    exp: Experiment
    opts: SearchOptions
    driver: LoadDriver
    source: MetricsSource | None
    store: RunStore
    flag: InterruptFlag
    base_url: str
    """The target as shown and stored (``${NAME}`` references kept)."""
    truth: dict[str, object] | None
    baseline: Baseline
    """The target before stage 1 (queue, backlog, probe latency): what recovery returns to."""

    @property
    def baseline_ms(self) -> float | None:
        return self.baseline.probe_p50_ms


def open_run(exp: Experiment, opts: SearchOptions, stack: ExitStack) -> RunParts:
    """Check everything that can fail without sending load, then create the run folder."""
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
    return RunParts(exp, opts, driver, source, store, flag, shown_url, truth, baseline)


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
