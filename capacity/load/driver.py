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
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal
from urllib.parse import urlsplit

import locust
from hdrh.histogram import HdrHistogram
from locust.env import Environment

from capacity.errors import CapacityError, TargetUnreachableError
from capacity.load.engine import StageEngine, StageRaw, drain_seconds
from capacity.load.executors import EndpointExecutor, Executor, error_kind, http_client, load_records
from capacity.load.measure import merge_kind_hists, pct_ms, to_sample
from capacity.load.schedule import suggest_max_inflight
from capacity.load.templates import compile_template
from capacity.load.testdata import FIELDS
from capacity.models import SecondSample
from capacity.plan.experiment import Workload
from capacity.signals import InterruptFlag, catch_interrupts

__all__ = ["LoadDriver", "StageMeasurement", "StageSpec", "suggest_max_inflight"]

OnSecond = Callable[[list[SecondSample]], str | None]


@dataclass(frozen=True)
class StageSpec:
    index: int
    target_rps: float
    duration_s: float
    """Whole stage, warm-up included."""
    warmup_s: float
    arrival: Literal["uniform", "poisson"] = "uniform"
    max_inflight: int = 256
    """Cap on requests in flight over all generator processes."""
    seed: int = 0


@dataclass
class StageMeasurement:
    spec: StageSpec
    started_at: datetime
    measure_from: datetime
    ended_at: datetime
    seconds: list[SecondSample]
    histogram: HdrHistogram
    """Measured part only, microseconds, from the intended start."""
    requests: int
    ok: int
    errors: int
    dropped: int
    status_codes: dict[str, int]
    per_endpoint: dict[str, dict[str, float]]
    aborted: str | None
    interrupted: bool
    worker_lost: bool
    generator_cpu_max_pct: float | None
    max_inflight_seen: int
    records_exhausted: int
    workers: int = 0
    per_worker: dict[str, dict[str, float]] = field(default_factory=dict)
    """Worker id -> requests and offered_rps over the measured window (distributed runs)."""
    warnings: list[str] = field(default_factory=list)
    load_ended_at: datetime | None = None
    """When arrivals stopped (the stage's end, or its abort), before in-flight requests drained."""

    @property
    def measured_s(self) -> float:
        """Length of the measured window actually offered (shorter when the stage was stopped).

        Ends when arrivals stopped, not after in-flight requests drained: dividing by the drain too
        would understate the offered rate of every aborted stage.
        """
        stop = self.load_ended_at.timestamp() if self.load_ended_at is not None else self.ended_at.timestamp()
        end = min(stop, self.started_at.timestamp() + self.spec.duration_s)
        return max(0.0, end - self.measure_from.timestamp())

    @property
    def offered_rps(self) -> float:
        w = self.measured_s
        return self.requests / w if w > 0 else 0.0

    @property
    def achieved_rps(self) -> float:
        w = self.measured_s
        return self.ok / w if w > 0 else 0.0

    def percentile_ms(self, q: float) -> float | None:
        """Latency percentile in ms; ``q`` in percent (95, 99.9), or a fraction when below 1."""
        return pct_ms(self.histogram, q * 100.0 if 0 < q < 1 else q)


def build_measurement(
    spec: StageSpec,
    raws: list[StageRaw],
    seconds: list[SecondSample],
    *,
    started_wall: float,
    aborted: str | None,
    interrupted: bool,
    worker_lost: bool = False,
    per_worker: dict[str, dict[str, float]] | None = None,
    workers: int = 0,
) -> StageMeasurement:
    hist, per_ep = merge_kind_hists(raws)
    codes: dict[str, int] = {}
    for r in raws:
        for c, n in r.status_codes.items():
            codes[c] = codes.get(c, 0) + n
    ended = max((r.ended_wall for r in raws), default=time.time())
    load_ended = max((r.load_stopped_wall or r.ended_wall for r in raws), default=ended)
    cpus = [s.generator_cpu_pct for s in seconds if s.generator_cpu_pct is not None]
    exhausted = sum(r.records_exhausted for r in raws)
    warnings = []
    if exhausted:
        warnings.append(f"stage {spec.index}: test data exhausted, {exhausted} arrival(s) had no unused record")
    return StageMeasurement(
        spec=spec,
        started_at=datetime.fromtimestamp(started_wall, UTC),
        measure_from=datetime.fromtimestamp(started_wall + spec.warmup_s, UTC),
        ended_at=datetime.fromtimestamp(ended, UTC),
        load_ended_at=datetime.fromtimestamp(load_ended, UTC),
        seconds=seconds,
        histogram=hist,
        requests=sum(r.requests for r in raws),
        ok=sum(r.ok for r in raws),
        errors=sum(r.errors for r in raws),
        dropped=sum(r.dropped for r in raws),
        status_codes=codes,
        per_endpoint=per_ep,
        aborted=aborted,
        interrupted=interrupted,
        worker_lost=worker_lost,
        generator_cpu_max_pct=max(cpus) if cpus else None,
        max_inflight_seen=max((s.inflight for s in seconds), default=0),
        records_exhausted=exhausted,
        workers=workers,
        per_worker=per_worker or {},
        warnings=warnings,
    )


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
        base_url: str,
        workload: Workload,
        *,
        headers: dict[str, str] | None = None,
        timeout_s: float = 10.0,
        workers: int = 0,
        locustfile: str | None = None,
        source_file: str | None = None,
        master_bind: str = "127.0.0.1",
        master_port: int = 0,
        expect_remote_workers: int = 0,
        worker_timeout_s: float = 30.0,
        health_path: str | None = None,
        grace_s: float = 0.1,
        fire_locust_events: bool = False,
        verify_tls: bool = True,
    ) -> None:
        if workers < 0 or expect_remote_workers < 0:
            raise CapacityError("workers and expect_remote_workers must be >= 0")
        self.base_url = base_url.rstrip("/")
        parts = urlsplit(self.base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise CapacityError(f"target URL must be http(s)://host[:port], got {base_url!r}")
        self.workload = workload
        self.headers = dict(headers or {})
        self.timeout_s = timeout_s
        self.workers = workers
        self.locustfile = locustfile or workload.locustfile
        self.source_file = source_file
        self.master_bind = master_bind
        self.master_port = master_port
        self.expect_remote_workers = expect_remote_workers
        self.worker_timeout_s = worker_timeout_s
        self.health_path = health_path
        self.grace_s = grace_s
        self.fire_locust_events = fire_locust_events
        self.verify_tls = verify_tls
        self._distributed = workers > 0 or expect_remote_workers > 0
        self._engine: StageEngine | None = None
        self._executor: Executor | None = None
        self._env: Environment | None = None
        self._events_snap: dict[str, list[Any]] | None = None
        self._master: Any = None
        self._started = False
        self._closed = False
        self._validate()

    # -- setup -------------------------------------------------------------------------------------

    def _validate(self) -> None:
        """Fail before any load: templates checked and test data read once per run."""
        if self.locustfile:
            from capacity.load.locustfile import load_user_classes, resolve_locustfile

            load_user_classes(resolve_locustfile(self.locustfile, self.source_file))
            return
        has_records = self.workload.test_data.source != "none"
        allowed = FIELDS if has_records else ()
        for ep in self.workload.endpoints:
            compile_template(ep.path, allowed=allowed, where=f"endpoint '{ep.name}' path")
            if ep.body is not None:
                compile_template(ep.body, allowed=allowed, where=f"endpoint '{ep.name}' body")
        if has_records:
            load_records(self.workload, self.source_file)

    def _make_executor(self, env: Environment) -> Executor:
        return make_executor(
            self.base_url,
            self.workload,
            env,
            headers=self.headers,
            timeout_s=self.timeout_s,
            locustfile=self.locustfile,
            source_file=self.source_file,
            fire_locust_events=self.fire_locust_events,
            verify_tls=self.verify_tls,
        )

    def start(self) -> None:
        """Build the executor (in-process) or start and wait for the workers; idempotent."""
        if self._started:
            return
        if self._closed:
            raise CapacityError("load driver is closed")
        self._events_snap = snapshot_events(locust.events)
        self._env = Environment(events=locust.events, host=self.base_url)
        try:
            if self._distributed:
                from capacity.load.distributed import Master

                self._master = Master(
                    self._env,
                    setup=self._setup_message(),
                    local_workers=self.workers,
                    remote_workers=self.expect_remote_workers,
                    bind=self.master_bind,
                    port=self.master_port,
                    timeout_s=self.worker_timeout_s,
                )
                self._master.start()
            else:
                if self.fire_locust_events:
                    self._env.create_local_runner()
                self._executor = self._make_executor(self._env)
                self._engine = StageEngine(self._executor, grace_s=self.grace_s)
        except BaseException:
            self.close()
            raise
        self._started = True

    def _setup_message(self) -> dict[str, Any]:
        return {
            "base_url": self.base_url,
            "workload": self.workload.model_dump(mode="json"),
            "headers": self.headers,
            "timeout_s": self.timeout_s,
            "locustfile": self.locustfile,
            "source_file": self.source_file,
            "grace_s": self.grace_s,
            "fire_locust_events": self.fire_locust_events,
            "verify_tls": self.verify_tls,
        }

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

    def _get(self, path: str) -> tuple[int | str, float]:
        client = http_client(
            self.base_url,
            concurrency=1,
            network_timeout=min(self.timeout_s, 10.0),
            connection_timeout=min(self.timeout_s, 5.0),
            verify_tls=self.verify_tls,
        )
        t0 = time.perf_counter()
        try:
            resp = client.request("GET", path, headers=self.headers)
            resp.read()
            return int(resp.status_code), (time.perf_counter() - t0) * 1000
        except Exception as exc:
            return f"{error_kind(exc).removeprefix('error:')}: {exc}", (time.perf_counter() - t0) * 1000
        finally:
            client.close()

    def preflight(self) -> None:
        """One GET before any load; no answer at all raises ``TargetUnreachableError`` (one line)."""
        path = self._probe_path(None)
        code, _ = self._get(path)
        if isinstance(code, str):
            raise TargetUnreachableError(f"target {self.base_url} is unreachable (GET {path}: {code})")

    def probe_latency_ms(self, n: int = 5, path: str | None = None) -> float | None:
        """Median of ``n`` sequential GETs (ms), or None when none got an HTTP answer."""
        p = self._probe_path(path)
        lat = [ms for code, ms in (self._get(p) for _ in range(max(1, n))) if isinstance(code, int)]
        return statistics.median(lat) if lat else None

    # -- stages ------------------------------------------------------------------------------------

    def run_stage(self, spec: StageSpec, on_second: OnSecond | None = None) -> StageMeasurement:
        """Offer ``spec.target_rps`` for ``spec.duration_s``; see the module docstring for stopping."""
        if spec.target_rps <= 0 or spec.duration_s <= 0 or spec.warmup_s < 0 or spec.max_inflight < 1:
            raise CapacityError(f"stage {spec.index}: rate, duration and max_inflight must be positive")
        self.start()
        with catch_interrupts() as flag:
            if self._master is not None:
                return self._master.run_stage(spec, on_second, lambda: flag.hit)
            return self._run_local(spec, on_second, flag)

    def _run_local(self, spec: StageSpec, on_second: OnSecond | None, flag: InterruptFlag) -> StageMeasurement:
        assert self._engine is not None
        samples: list[SecondSample] = []
        start_wall = time.time()

        def second(raw: Any) -> str | None:
            samples.append(
                to_sample(
                    raw,
                    stage=spec.index,
                    start_wall=start_wall,
                    warmup_s=spec.warmup_s,
                    target_rps=spec.target_rps,
                    workers=1,
                )
            )
            return on_second(samples) if on_second is not None else None

        raw = self._engine.run(
            rate=spec.target_rps,
            duration_s=spec.duration_s,
            warmup_s=spec.warmup_s,
            arrival=spec.arrival,
            max_inflight=spec.max_inflight,
            seed=spec.seed,
            start_wall=start_wall,
            drain_s=drain_seconds(self.timeout_s),
            on_second=second,
            should_stop=lambda: "interrupted" if flag.hit else None,
        )
        # rebuilt once more at the end: the last second gains drain completions after it closed
        samples = [
            to_sample(
                sec,
                stage=spec.index,
                start_wall=start_wall,
                warmup_s=spec.warmup_s,
                target_rps=spec.target_rps,
                workers=1,
            )
            for sec in raw.seconds
        ]
        interrupted = raw.stopped == "interrupted"
        return build_measurement(
            spec,
            [raw],
            samples,
            started_wall=start_wall,
            aborted=raw.stopped,
            interrupted=interrupted,
            workers=0,
        )

    def close(self) -> None:
        """Stop everything and reap child processes; safe to call more than once."""
        if self._closed:
            return
        self._closed = True
        try:
            if self._master is not None:
                self._master.close()
            if self._executor is not None:
                self._executor.close()
            if self._master is None and self._env is not None and self._env.runner is not None:
                self._env.runner.quit()
        finally:
            if self._events_snap is not None:
                restore_events(locust.events, self._events_snap)


def make_executor(
    base_url: str,
    workload: Workload,
    env: Environment,
    *,
    headers: dict[str, str],
    timeout_s: float,
    locustfile: str | None,
    source_file: str | None,
    fire_locust_events: bool = False,
    stripe_index: int = 0,
    stripes: int = 1,
    verify_tls: bool = True,
) -> Executor:
    """The executor for a workload: a locustfile's tasks, or endpoints over a striped record set."""
    if locustfile:
        from capacity.load.locustfile import LocustfileExecutor

        return LocustfileExecutor(
            base_url,
            locustfile,
            environment=env,
            headers=headers,
            timeout_s=timeout_s,
            source_file=source_file,
            fire_locust_events=fire_locust_events,
            verify_tls=verify_tls,
        )
    from capacity.load.executors import stripe

    records = stripe(load_records(workload, source_file), stripe_index, stripes)
    ex = EndpointExecutor(
        base_url,
        workload,
        headers=headers,
        timeout_s=timeout_s,
        source_file=source_file,
        records=records,
        pool_seed=workload.test_data.seed + stripe_index,
        verify_tls=verify_tls,
    )
    if fire_locust_events:
        return _LocustEventExecutor(ex, env)
    return ex


class _LocustEventExecutor:
    """Fires Locust's ``request`` event per request so Locust's own stats and UI keep working."""

    def __init__(self, inner: EndpointExecutor, env: Environment) -> None:
        self.inner = inner
        self.names = inner.names
        self.weights = inner.weights
        self.fire = env.events.request.fire
        self.methods = [e.method for e in inner._eps]

    @property
    def records_exhausted(self) -> int:
        return self.inner.records_exhausted

    @records_exhausted.setter
    def records_exhausted(self, value: int) -> None:
        self.inner.records_exhausted = value

    def prepare(self, max_inflight: int) -> None:
        self.inner.prepare(max_inflight)

    def new_state(self) -> Any:
        return None

    def execute(self, kind: int, state: Any) -> int | str:
        t0 = time.perf_counter()
        code = self.inner.execute(kind, state)
        self.fire(
            request_type=self.methods[kind],
            name=self.names[kind],
            response_time=(time.perf_counter() - t0) * 1000.0,
            response_length=0,
            exception=None if isinstance(code, int) and code < 400 else CapacityError(str(code)),
            context=None,
        )
        return code

    def reset(self) -> None:
        self.inner.reset()

    def close(self) -> None:
        self.inner.close()
