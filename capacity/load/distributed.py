"""Distributed stages on Locust's own master/worker transport (ZeroMQ, custom messages).

Master -> worker: ``cap_setup`` (workload, target, this worker's test-data stripe), ``cap_stage``
(its rate share = rate/N, phase i/N of its interarrival, a common start time), ``cap_stop``.
Worker -> master: ``cap_ready``/``cap_error`` after setup, ``cap_second`` per closed second,
``cap_done`` per stage (encoded histograms). A worker is *lost* when its local process exits,
Locust's heartbeat marks it missing, or its seconds stop arriving; the stage then finishes on the
others with ``worker_lost=True`` and later stages split the rate over the workers left.
"""

from __future__ import annotations

import contextlib
import math
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import gevent
import locust
import psutil
from locust.env import Environment
from locust.runners import STATE_MISSING, MasterRunner, WorkerRunner

from capacity.core.errors import CapacityError
from capacity.core.measurement import StageMeasurement, StageSpec
from capacity.core.models import SecondSample
from capacity.load.auth import TokenHolder
from capacity.load.engine import EngineStage, SecondRaw, StageEngine, StageRaw, drain_seconds, stage_seconds
from capacity.load.leases import StripeLeases
from capacity.load.measure import (
    merge_seconds,
    second_from_wire,
    second_to_wire,
    stage_from_wire,
    stage_to_wire,
)
from capacity.load.settings import GeneratorSetup, WorkerSettings
from capacity.load.stage_totals import OnSecond, build_measurement, stage_sample
from capacity.load.workload_executor import make_executor

LOST_AFTER_S = 4.0
"""A worker whose seconds are this late (beyond the expected second) is taken for lost."""


@dataclass
class _Fanout:
    """One distributed stage in progress, as the master sees it."""

    spec: StageSpec
    start_wall: float
    running: list[str]
    """Workers still expected to report; lost ones are removed."""
    done: dict[str, StageRaw]
    """Worker id -> its stage totals, filled in by ``cap_done`` messages."""
    nsec: int = 0
    k: int = 0
    """The next second to merge and hand on."""
    stopped: str | None = None
    worker_lost: bool = False
    samples: list[SecondSample] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.nsec = stage_seconds(self.spec.duration_s)


class Master:
    """Master side: start/await workers, fan a stage out, merge what comes back."""

    def __init__(
        self, env: Environment, *, setup: GeneratorSetup, pool: WorkerSettings, token: TokenHolder | None = None
    ) -> None:
        """``setup``: what every worker builds its executor from (each gets its own stripe); ``token``: the
        run's token, which the master owns; workers get it with setup, each stage and each refresh
        (``cap_token``), and ask for one refresh on a 401 (``cap_unauthorized``)."""
        self.env = env
        self.token = token
        self.setup = setup
        self.local_workers = pool.workers
        self.expected = pool.workers + pool.expect_remote_workers
        self.timeout_s = pool.worker_timeout_s
        self.runner: MasterRunner = env.create_master_runner(
            master_bind_host=pool.master_bind, master_bind_port=pool.master_port
        )
        self.port: int = self.runner.server.port
        self.procs: list[subprocess.Popen[bytes]] = []
        self.leases = StripeLeases(self.expected, spares=pool.expect_remote_workers)  # a reconnect: a fresh stripe
        self.ready: dict[str, int] = {}  # client id -> pid
        self.errors: list[str] = []
        self.lost: set[str] = set()
        self.last_seen: dict[str, float] = {}
        self.seconds: dict[tuple[int, int], dict[str, SecondRaw]] = {}
        self.done: dict[int, dict[str, StageRaw]] = {}
        self.retries: dict[tuple[int, str], int] = {}  # (stage, worker) -> its auth retries
        r = self.runner
        r.register_message("cap_hello", self._on_hello)
        r.register_message("cap_ready", self._on_ready)
        r.register_message("cap_error", self._on_error)
        r.register_message("cap_second", self._on_second)
        r.register_message("cap_done", self._on_done)
        r.register_message("cap_unauthorized", self._on_unauthorized)

    # -- messages (run in the master runner's listener greenlet) --------------------------------------

    def _on_hello(self, environment: Environment, msg: Any) -> None:
        client_id = msg.node_id
        stripe = self.leases.lease(client_id)
        if stripe is None:
            self.runner.send_message("cap_setup", {"refused": self.leases.refusal()}, client_id=client_id)
            return
        setup = self.setup.model_copy(update={"stripe": stripe, "stripes": self.leases.count})
        self.runner.send_message("cap_setup", {"setup": setup.to_wire(), **self._token()}, client_id=client_id)

    def _token(self) -> dict[str, Any]:
        t = self.token
        return {"token": t.value, "generation": t.generation} if t is not None and t.value is not None else {}

    def broadcast_token(self, value: str, generation: int) -> None:
        """A refreshed token to every worker (they never run the token command themselves)."""
        for cid in list(self.ready):
            self.runner.send_message("cap_token", {"token": value, "generation": generation}, client_id=cid)

    def _on_unauthorized(self, environment: Environment, msg: Any) -> None:
        if self.token is not None:
            self.token.unauthorized(int(msg.data.get("generation", -1)))

    def _on_ready(self, environment: Environment, msg: Any) -> None:
        self.ready[msg.node_id] = int(msg.data.get("pid", 0))
        self.last_seen[msg.node_id] = time.time()

    def _on_error(self, environment: Environment, msg: Any) -> None:
        self.errors.append(str(msg.data.get("message")))

    def _on_second(self, environment: Environment, msg: Any) -> None:
        self.last_seen[msg.node_id] = time.time()
        self.seconds.setdefault((int(msg.data["stage"]), int(msg.data["k"])), {})[msg.node_id] = second_from_wire(
            msg.data
        )

    def _on_done(self, environment: Environment, msg: Any) -> None:
        self.last_seen[msg.node_id] = time.time()
        self.done.setdefault(int(msg.data["stage"]), {})[msg.node_id] = stage_from_wire(msg.data)
        self.retries[(int(msg.data["stage"]), msg.node_id)] = int(msg.data.get("auth_retries", 0))

    # -- lifecycle -------------------------------------------------------------------------------------

    def start(self) -> None:
        for _ in range(self.local_workers):
            self.procs.append(
                subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "capacity.load.worker",
                        "--master",
                        f"127.0.0.1:{self.port}",
                        "--parent-pid",
                        str(os.getpid()),
                    ],
                    start_new_session=True,  # Ctrl-C reaches the master only; it stops the workers
                    stdin=subprocess.DEVNULL,
                )
            )
        deadline = time.monotonic() + self.timeout_s
        while len(self.ready) < self.expected:
            if self.errors:
                raise CapacityError(f"load worker setup failed: {self.errors[0]}")
            dead = [p for p in self.procs if p.poll() is not None]
            if dead:
                raise CapacityError(f"a local load worker exited during start-up (exit code {dead[0].returncode})")
            if time.monotonic() > deadline:
                raise CapacityError(
                    f"only {len(self.ready)} of {self.expected} load worker(s) joined the master on port "
                    f"{self.port} within {self.timeout_s:g}s"
                )
            gevent.sleep(0.05)

    def _alive(self, cid: str) -> bool:
        if cid in self.lost:
            return False
        pid = self.ready.get(cid, 0)
        for p in self.procs:
            if p.pid == pid:
                return p.poll() is None
        node = self.runner.clients.get(cid)
        return node is not None and node.state != STATE_MISSING

    def run_stage(
        self, spec: StageSpec, on_second: OnSecond | None, interrupted: Callable[[], bool]
    ) -> StageMeasurement:
        """Split ``spec`` over the live workers, merge their seconds in order, add up their totals."""
        active = sorted(c for c in self.ready if self._alive(c))
        if not active:
            raise CapacityError("no load workers left")
        drain_s = drain_seconds(self.setup.settings.connection.timeout_s)
        st = _Fanout(
            spec, start_wall=time.time() + 0.3, running=list(active), done=self.done.setdefault(spec.index, {})
        )
        self._send_stage(st, drain_s)
        end_deadline = st.start_wall + spec.duration_s + drain_s + 5.0
        while True:
            now = time.time()
            self._drop_lost(st, now)
            if st.stopped is None and interrupted():
                self._stop(st, "interrupted")
            self._emit_seconds(st, now, on_second)
            if all(c in st.done for c in st.running) and (st.k >= st.nsec or st.stopped or not st.running):
                break
            if now > end_deadline:
                for cid in st.running:
                    if cid not in st.done:
                        self.lost.add(cid)
                        st.worker_lost = True
                break
            gevent.sleep(0.05)
        return self._finish(st, workers=len(active))

    def _send_stage(self, st: _Fanout, drain_s: float) -> None:
        """Worker ``i`` of ``n`` gets rate/n, a phase of i/n of its interarrival and its own seed."""
        spec, n = st.spec, len(st.running)
        for i, cid in enumerate(st.running):
            self.last_seen[cid] = time.time()
            stage = EngineStage(
                rate=spec.target_rps / n,
                duration_s=spec.duration_s,
                warmup_s=spec.warmup_s,
                arrival=spec.arrival,
                shape=spec.shape,
                max_inflight=max(1, math.ceil(spec.max_inflight / n)),
                seed=spec.seed * 1000 + i,
                phase=i / n,
                start_wall=st.start_wall,
                drain_s=drain_s,
            )
            message = {"index": spec.index, "stage": stage.model_dump(mode="json"), **self._token()}
            self.runner.send_message("cap_stage", message, client_id=cid)

    def _stop(self, st: _Fanout, reason: str) -> None:
        st.stopped = reason
        self.runner.send_message("cap_stop", {"index": st.spec.index, "reason": reason})

    def _drop_lost(self, st: _Fanout, now: float) -> None:
        """A worker that exited, went missing, or whose seconds are ``LOST_AFTER_S`` late is lost."""
        for cid in list(st.running):
            late = now - max(self.last_seen.get(cid, 0.0), st.start_wall + min(st.k, st.nsec) + 1)
            if not self._alive(cid) or (cid not in st.done and late > LOST_AFTER_S):
                st.running.remove(cid)
                self.lost.add(cid)
                st.worker_lost = True

    def _emit_seconds(self, st: _Fanout, now: float, on_second: OnSecond | None) -> None:
        """Merge and hand on each second once every running worker sent it (or it is overdue), in order."""
        index = st.spec.index
        while st.k < st.nsec:
            k = st.k
            got = self.seconds.get((index, k), {})
            complete = all(c in got or c in st.done for c in st.running)
            overdue = now > st.start_wall + k + 1 + LOST_AFTER_S
            if not (complete or overdue or (st.stopped and all(c in st.done for c in st.running))):
                return
            parts = list(self.seconds.pop((index, k), {}).values())
            if not parts and (st.stopped or not st.running):
                st.k = st.nsec
                return
            sec = merge_seconds(parts) if parts else SecondRaw(k=k)
            sec.k = k
            st.samples.append(stage_sample(st.spec, sec, start_wall=st.start_wall, workers=len(parts)))
            st.k = k + 1
            if st.stopped is None and on_second is not None:
                reason = on_second(st.samples)
                if reason is not None:
                    self._stop(st, reason)

    def _finish(self, st: _Fanout, *, workers: int) -> StageMeasurement:
        spec, done = st.spec, st.done
        for key in [key for key in self.seconds if key[0] == spec.index]:
            del self.seconds[key]
        self.done.pop(spec.index, None)
        raws = [done[c] for c in sorted(done)]
        window = max(1e-9, spec.duration_s - spec.warmup_s)
        per_worker = {c: {"requests": float(r.requests), "offered_rps": r.requests / window} for c, r in done.items()}
        stopped = st.stopped
        if any(r.stopped == "interrupted" for r in raws):
            stopped = stopped or "interrupted"
        meas = build_measurement(
            spec, raws, st.samples, started_wall=st.start_wall, aborted=stopped, worker_lost=st.worker_lost,
            workers=workers,
        )  # fmt: skip
        meas.per_worker = per_worker
        meas.auth_retries = sum(n for (i, _), n in self.retries.items() if i == spec.index)
        return meas

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.runner.quit()
        deadline = time.monotonic() + 3.0
        for p in self.procs:
            while p.poll() is None and time.monotonic() < deadline:
                gevent.sleep(0.05)
        for p in [p for p in self.procs if p.poll() is None]:
            p.terminate()
        for p in self.procs:
            try:
                p.wait(timeout=2.0)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(timeout=2.0)
        with contextlib.suppress(Exception):
            self.runner.server.close(linger=0)


class WorkerAgent:
    """Worker side: build the executor on setup, run stages as the master asks, report back."""

    def __init__(self, env: Environment, runner: WorkerRunner) -> None:
        self.env = env
        self.runner = runner
        self.engine: StageEngine | None = None
        self.stop_reason: str | None = None
        self.token: TokenHolder | None = None
        runner.register_message("cap_setup", self._on_setup)
        runner.register_message("cap_token", self._on_token)
        runner.register_message("cap_stage", self._on_stage)
        runner.register_message("cap_stop", self._on_stop)

    def _on_setup(self, environment: Environment, msg: Any) -> None:
        d = msg.data
        if d.get("refused"):  # no fresh record stripe for us: join no stage
            gevent.spawn(self.runner.quit)
            return
        try:
            setup = GeneratorSetup.model_validate(d["setup"])
            if setup.auth_header:
                self.token = TokenHolder(setup.auth_header)
                self.token.on_unauthorized = lambda g: self.runner.send_message("cap_unauthorized", {"generation": g})
                self._take_token(d)
            ex = make_executor(setup, self.env, auth=self.token)
        except Exception as exc:
            self.runner.send_message("cap_error", {"message": str(exc)})
            return
        self.engine = StageEngine(ex, grace_s=setup.settings.grace_s)
        self.runner.send_message("cap_ready", {"pid": os.getpid()})

    def _take_token(self, d: dict[str, Any]) -> None:
        if self.token is not None and d.get("token") and int(d.get("generation", 0)) > self.token.generation:
            self.token.set(str(d["token"]), int(d["generation"]))

    def _on_token(self, environment: Environment, msg: Any) -> None:
        self._take_token(dict(msg.data))

    def _on_stop(self, environment: Environment, msg: Any) -> None:
        self.stop_reason = str(msg.data.get("reason") or "stopped")

    def _on_stage(self, environment: Environment, msg: Any) -> None:
        self.stop_reason = None
        self._take_token(dict(msg.data))
        gevent.spawn(self._run_stage, dict(msg.data))

    def _run_stage(self, d: dict[str, Any]) -> None:
        assert self.engine is not None
        index, retries = int(d["index"]), self.token.retries if self.token is not None else 0

        def second(s: SecondRaw) -> str | None:
            self.runner.send_message("cap_second", second_to_wire(index, s))
            return None

        stage = EngineStage.model_validate(d["stage"])
        raw = self.engine.run(stage, on_second=second, should_stop=lambda: self.stop_reason)
        retried = (self.token.retries - retries) if self.token is not None else 0
        self.runner.send_message("cap_done", {**stage_to_wire(index, raw), "auth_retries": retried})


def run_worker(master: str, parent_pid: int | None = None) -> int:
    """Join a master (``HOST[:PORT]``) and serve stages until it quits; returns an exit code."""
    host, _, port_s = master.rpartition(":") if ":" in master else (master, "", "5557")
    try:
        port = int(port_s)
    except ValueError:
        raise CapacityError(f"--master {master!r}: port must be a number") from None
    env = Environment(events=locust.events)
    try:
        runner = env.create_worker_runner(master_host=host or master, master_port=port)
    except (ConnectionError, OSError) as exc:
        raise CapacityError(f"could not join the load master at {master}: {exc or 'no answer'}") from None
    WorkerAgent(env, runner)
    runner.send_message("cap_hello", {"pid": os.getpid()})  # handlers are registered: ask for setup

    def stop(*_: Any) -> None:
        gevent.spawn(runner.quit)

    signal.signal(signal.SIGTERM, stop)
    if parent_pid:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # the master handles Ctrl-C and stops us

        def watchdog() -> None:
            while True:
                gevent.sleep(0.5)
                if os.getppid() != parent_pid or not psutil.pid_exists(parent_pid):
                    runner.quit()
                    return

        gevent.spawn(watchdog)
    else:
        signal.signal(signal.SIGINT, stop)
    runner.greenlet.join()
    return 0
