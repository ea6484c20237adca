"""The load driver the search runner calls: one stage at a time, open model, exact histograms.

``workers=0`` runs the stage engine in this process's gevent loop; ``workers=N`` starts N local
Locust worker processes under a Locust MasterRunner (plus any remote ``capacity worker``s) and
splits the rate exactly between them (see ``capacity.load.distributed``). Either way the caller
gets one ``StageMeasurement`` with per-second samples merged across generator processes.

SIGINT/SIGTERM during a stage stop it within about a second and return ``interrupted=True``; the
driver's own handlers are installed only for the stage's duration.
"""

from __future__ import annotations

import statistics
import time
from typing import Any
from urllib.parse import urlsplit

import locust
from geventhttpclient import HTTPClient
from locust.env import Environment

from capacity.core.errors import CapacityError, TargetUnreachableError
from capacity.core.measurement import StageMeasurement, StageSpec
from capacity.core.models import SecondSample
from capacity.core.signals import InterruptFlag, catch_interrupts
from capacity.core.urls import check_http_url
from capacity.load.auth import TokenHolder, TokenRefresher
from capacity.load.distributed import Master
from capacity.load.engine import EngineStage, SecondRaw, StageEngine, drain_seconds
from capacity.load.executors import Executor, error_kind, http_client
from capacity.load.leases import check_master_bind
from capacity.load.schedule import suggest_max_inflight
from capacity.load.settings import GeneratorSettings, GeneratorSetup, WorkerSettings
from capacity.load.smoke import check_smoke, run_smoke, spent_records
from capacity.load.stage_totals import OnSecond, build_measurement, stage_sample
from capacity.load.workload_executor import experiment_dir, make_executor
from capacity.plan.experiment import Auth
from capacity.plan.secrets import redact
from capacity.plan.testdata import Record, load_records

__all__ = ["LoadDriver", "StageMeasurement", "StageSpec", "suggest_max_inflight"]


def snapshot_events(events: Any) -> dict[str, list[Any]]:
    """Listener lists of Locust's global events, so a closed driver leaves no listeners behind."""
    return {k: list(v._handlers) for k, v in vars(events).items() if hasattr(v, "_handlers")}


def restore_events(events: Any, snap: dict[str, list[Any]]) -> None:
    for k, handlers in snap.items():
        hook = getattr(events, k, None)
        if hook is not None:
            hook._handlers = list(handlers)


class LoadDriver:
    """Open-model load on Locust. Use as a context manager; ``close`` reaps every child process."""

    def __init__(
        self,
        settings: GeneratorSettings,
        *,
        workers: WorkerSettings | None = None,
        auth: Auth | None = None,
        health_path: str | None = None,
    ) -> None:
        """``settings.connection.headers`` and ``auth`` are live values (``${NAME}`` filled in): held in
        memory, never stored. ``workers``: none by default (the stage engine runs in this process)."""
        pool = workers or WorkerSettings()
        if pool.workers < 0 or pool.expect_remote_workers < 0:
            raise CapacityError("workers and expect_remote_workers must be >= 0")
        if pool.distributed:
            check_master_bind(pool.master_bind, cleartext_confirmed=pool.allow_cleartext)
        c = settings.connection
        self.base_url = c.base_url.rstrip("/")
        check_http_url(self.base_url, "target URL", error=CapacityError)
        connection = c.model_copy(update={"base_url": self.base_url})
        self.settings = settings.model_copy(update={"connection": connection, "locustfile": settings.tasks_file})
        self.connection = connection
        self.workload = settings.workload
        self.pool = pool
        self.health_path = health_path
        self._holder = TokenHolder(auth.header) if auth is not None else None
        self._refresher = (
            TokenRefresher(auth, self._holder, on_new=self._on_token, cwd=experiment_dir(settings.source_file))
            if auth is not None and self._holder
            else None
        )
        self._session_auth = auth if auth is not None and auth.scope == "session" else None
        """``[target.auth] scope = "session"``: every generator process runs the command per session."""
        self._used: list[Record] = []
        """Test records the smoke preflight consumed: kept out of the run."""
        self._engine: StageEngine | None = None
        self._master: Master | None = None
        self._started = False
        self._closed = False
        # listeners a locustfile or a runner adds are removed again by close()
        self._events_snap = snapshot_events(locust.events)
        self._env = Environment(events=locust.events, host=self.base_url)
        self._executor: Executor | None = None
        try:
            self._executor = make_executor(self._setup(), self._env, auth=self._holder)
        except BaseException:
            restore_events(locust.events, self._events_snap)
            raise
        if pool.distributed:
            # built only to fail before any load (templates, test data, locustfile); workers build their own
            self._executor.close()
            self._executor = None

    # -- setup -------------------------------------------------------------------------------------

    def _setup(self) -> GeneratorSetup:
        """What a generator process builds its executor from (stripe 0 of 1; a worker's stripe is its own)."""
        return GeneratorSetup(
            settings=self.settings,
            auth_header=self._holder.header if self._holder is not None else None,
            session_auth=self._session_auth,
            used=tuple(self._used),
        )

    def _ensure_token(self) -> None:
        """The run's first token (a failing command is an error before any load); then refreshed."""
        if self._refresher is not None:
            self._refresher.start()

    def _on_token(self, value: str, generation: int) -> None:
        if self._master is not None:
            self._master.broadcast_token(value, generation)

    def _request_headers(self) -> dict[str, str]:
        """The headers a probe sends: the static ones and the current token."""
        h = self._holder
        return (
            {**self.connection.headers, h.header: h.value}
            if h is not None and h.value is not None
            else dict(self.connection.headers)
        )

    def start(self) -> None:
        """Build the executor (in-process) or start and wait for the workers; idempotent."""
        if self._started:
            return
        if self._closed:
            raise CapacityError("load driver is closed")
        try:
            self._ensure_token()
            if self.pool.distributed:
                self._master = Master(self._env, setup=self._setup(), pool=self.pool, token=self._holder)
                self._master.start()
            else:
                assert self._executor is not None
                if self._used:  # rebuilt without the records the smoke consumed
                    self._executor.close()
                    self._executor = make_executor(self._setup(), self._env, auth=self._holder)
                if self.settings.fire_locust_events:
                    self._env.create_local_runner()
                self._engine = StageEngine(self._executor, grace_s=self.settings.grace_s)
        except BaseException:
            self.close()
            raise
        self._started = True

    def __enter__(self) -> LoadDriver:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- probes ------------------------------------------------------------------------------------

    def _probe_path(self, path: str | None) -> str:
        if path:
            return path
        if self.health_path:
            return self.health_path
        prefix = urlsplit(self.base_url).path.rstrip("/")
        for ep in self.workload.endpoints:
            if ep.method == "GET" and not ep.consumes and "{" not in ep.path:
                return prefix + ep.path
        return prefix + "/"

    def _probe_gets(self, path: str, n: int) -> list[tuple[int | str, float]]:
        """``n`` sequential GETs on one connection: (status or error text, ms) each."""
        c = self.connection
        client: HTTPClient = http_client(
            self.base_url,
            concurrency=1,
            network_timeout=min(c.timeout_s, 10.0),
            connection_timeout=min(c.timeout_s, 5.0),
            verify_tls=c.verify_tls,
        )
        out: list[tuple[int | str, float]] = []
        try:
            for _ in range(n):
                t0 = time.perf_counter()
                try:
                    resp = client.request("GET", path, headers=self._request_headers())
                    resp.read()
                    out.append((int(resp.status_code), (time.perf_counter() - t0) * 1000))
                except Exception as exc:
                    text = redact(f"{error_kind(exc).removeprefix('error:')}: {exc}")
                    out.append((text, (time.perf_counter() - t0) * 1000))
        finally:
            client.close()
        return out

    def preflight(self) -> None:
        """One GET before any load; no answer at all raises ``TargetUnreachableError`` (one line)."""
        self._ensure_token()
        path = self._probe_path(None)
        [(code, _)] = self._probe_gets(path, 1)
        if isinstance(code, str):
            raise TargetUnreachableError(redact(f"target {self.base_url} is unreachable (GET {path}: {code})"))

    def smoke(self) -> None:
        """One request per endpoint with real test data; a non-working answer raises (exit 2) before any stage.

        Call before ``start``: the records consuming endpoints used here are kept out of the run.
        """
        if self.settings.locustfile or not self.workload.endpoints or self._started:
            return
        self._ensure_token()
        answers = run_smoke(
            self.base_url,
            self.workload,
            headers=self._request_headers(),
            records=load_records(self.workload, self.settings.source_file),
            timeout_s=self.connection.timeout_s,
            verify_tls=self.connection.verify_tls,
        )
        self._used = spent_records(answers)
        check_smoke(answers)

    def probe_latency_ms(self, n: int = 5, path: str | None = None) -> float | None:
        """Median of ``n`` sequential GETs (ms) on one connection, or None when none got an HTTP answer."""
        lat = [ms for code, ms in self._probe_gets(self._probe_path(path), max(1, n)) if isinstance(code, int)]
        return statistics.median(lat) if lat else None

    # -- stages ------------------------------------------------------------------------------------

    def run_stage(self, spec: StageSpec, on_second: OnSecond | None = None) -> StageMeasurement:
        """Offer ``spec.target_rps`` for ``spec.duration_s``; see the module docstring for stopping."""
        if spec.target_rps <= 0 or spec.duration_s <= 0 or spec.warmup_s < 0 or spec.max_inflight < 1:
            raise CapacityError(f"stage {spec.index}: rate, duration and max_inflight must be positive")
        self.start()
        with catch_interrupts() as flag:
            if self._master is not None:
                return self._master.run_stage(spec, on_second, lambda: bool(flag))
            return self._run_local(spec, on_second, flag)

    def _run_local(self, spec: StageSpec, on_second: OnSecond | None, flag: InterruptFlag) -> StageMeasurement:
        assert self._engine is not None
        samples: list[SecondSample] = []
        start_wall = time.time()
        retries_before = self._holder.retries if self._holder is not None else 0

        def second(raw: SecondRaw) -> str | None:
            samples.append(stage_sample(spec, raw, start_wall=start_wall, workers=1))
            return on_second(samples) if on_second is not None else None

        stage = EngineStage(
            rate=spec.target_rps,
            duration_s=spec.duration_s,
            warmup_s=spec.warmup_s,
            arrival=spec.arrival,
            shape=spec.shape,
            max_inflight=spec.max_inflight,
            seed=spec.seed,
            start_wall=start_wall,
            drain_s=drain_seconds(self.connection.timeout_s),
        )
        raw = self._engine.run(stage, on_second=second, should_stop=lambda: "interrupted" if flag.hit else None)
        # rebuilt once more at the end: the last second gains drain completions after it closed
        samples = [stage_sample(spec, sec, start_wall=start_wall, workers=1) for sec in raw.seconds]
        meas = build_measurement(spec, [raw], samples, started_wall=start_wall, aborted=raw.stopped, workers=0)
        meas.auth_retries = (self._holder.retries - retries_before) if self._holder is not None else 0
        return meas

    def close(self) -> None:
        """Stop everything and reap child processes; safe to call more than once."""
        if self._closed:
            return
        self._closed = True
        try:
            if self._refresher is not None:
                self._refresher.close()
            if self._master is not None:
                self._master.close()
            if self._executor is not None:
                self._executor.close()
            if self._master is None and self._env is not None and self._env.runner is not None:
                self._env.runner.quit()
        finally:
            restore_events(locust.events, self._events_snap)
