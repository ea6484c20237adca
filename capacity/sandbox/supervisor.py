"""The sandbox supervisor: owns the port, the task processes, the shared data, job queue and metrics.

It binds the port first (so "port in use" fails before anything starts), starts ``app_tasks`` app
and ``sidekiq_tasks`` worker processes that connect back over a Unix socket, and serves HTTP only
once every task has said hello. Stopping it stops every child: they exit when the socket closes,
are terminated and then killed if they linger, and Linux kills them if the supervisor dies hard.

``python -m capacity.sandbox.supervisor PORT PARENT_PID`` (config JSON on stdin) is how
``run_sandbox`` starts it; it prints one JSON line when ready and exits 2 with one line on bad input.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from aiohttp import web

from capacity.core.errors import CapacityError
from capacity.sandbox.config import SandboxConfig
from capacity.sandbox.framing import encode, messages, read_msg
from capacity.sandbox.front import build_app
from capacity.sandbox.listen import SandboxServer, bind_port, serve_front
from capacity.sandbox.metricstore import MetricStore
from capacity.sandbox.procstats import die_with_parent
from capacity.sandbox.resize import AppScaler
from capacity.sandbox.stack import PumaStack, RailsStack
from capacity.sandbox.state import ClinicData, JobQueue
from capacity.sandbox.task_loss import TaskLoss, add_task_routes
from capacity.sandbox.tasks import each_second

START_TIMEOUT_S = 60.0


@dataclass
class TaskConn:
    role: str
    index: int
    pid: int
    task_arn: str
    writer: asyncio.StreamWriter
    pending: dict[int, asyncio.Future[int]] = field(default_factory=dict)
    free: int = 0
    alive: bool = True


class Supervisor:
    """Runs one sandbox inside the current asyncio loop; ``start`` then ``stop``."""

    def __init__(self, cfg: SandboxConfig) -> None:
        self.cfg = cfg
        self.store = MetricStore()
        self.data = ClinicData(cfg.seed, cfg.records)
        self.queue = JobQueue()
        self.apps: list[TaskConn] = []
        self.workers: list[TaskConn] = []
        self.port = 0
        self._ids = itertools.count(1)
        self._rr = itertools.count()
        self._procs: list[asyncio.subprocess.Process] = []
        self._tmp = tempfile.mkdtemp(prefix="capacity-sandbox-")
        self._hello = asyncio.Event()
        self._background: list[asyncio.Task[None]] = []
        self._conn_tasks: set[asyncio.Task[None]] = set()
        self._runner: web.AppRunner | None = None
        self._unix: asyncio.Server | None = None
        self._worker_rr = 0
        self._sock_path = ""
        self._app_index = itertools.count()
        self.scaler = AppScaler(self)
        self.losses = TaskLoss(self.scaler, cfg)

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self._procs]

    # ------------------------------------------------------------------------- lifecycle
    async def start(self, port: int = 0) -> None:
        sock = bind_port(port)
        self.port = sock.getsockname()[1]
        try:
            self._sock_path = os.path.join(self._tmp, "tasks.sock")
            self._unix = await asyncio.start_unix_server(self._on_conn, path=self._sock_path)
            roles = [("app", self.next_app_index()) for _ in range(self.cfg.app_tasks)]
            roles += [("sidekiq", i) for i in range(self.cfg.sidekiq_tasks)]
            for role, i in roles:
                await self.spawn(role, i)
            await self._await_tasks(len(roles))
            self._background.append(asyncio.create_task(self._queue_metrics()))
            if self.cfg.follow_ecs:
                from capacity.sandbox.ecs_follow import follow_ecs

                self._background.append(asyncio.create_task(follow_ecs(self.scaler, self.cfg, self.losses)))
            app = build_app(self.cfg, self)
            add_task_routes(app, self.losses)
            self._runner = await serve_front(app, sock)
        except BaseException:
            sock.close()
            await self.stop()
            raise

    def next_app_index(self) -> int:
        return next(self._app_index)

    async def spawn(self, role: str, index: int) -> None:
        """Start one task process; it connects back and says hello (then it is in ``apps``/``workers``)."""
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "capacity.sandbox.tasks",
            role,
            str(index),
            self._sock_path,
            str(os.getpid()),
            self.cfg.to_json(with_keys=False),
            stdin=asyncio.subprocess.DEVNULL,
        )
        self._procs.append(proc)

    async def reap(self, pid: int) -> None:
        """Wait for a retired task's process to exit (terminate it if it lingers)."""
        for proc in [p for p in self._procs if p.pid == pid]:
            try:
                await asyncio.wait_for(proc.wait(), timeout=3.0)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    proc.terminate()
                await proc.wait()
            self._procs.remove(proc)

    async def _await_tasks(self, expected: int) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while len(self.apps) + len(self.workers) < expected:
            dead = [p for p in self._procs if p.returncode is not None]
            if dead:
                raise CapacityError(f"sandbox: a task process exited during start (exit code {dead[0].returncode})")
            left = deadline - time.monotonic()
            if left <= 0:
                raise CapacityError(f"sandbox: task processes did not start within {START_TIMEOUT_S:.0f} s")
            self._hello.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._hello.wait(), timeout=min(left, 0.2))

    async def stop(self) -> None:
        """Stop serving, then every child process (terminate, then kill); idempotent."""
        for t in self._background:
            t.cancel()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        for conn in [*self.apps, *self.workers]:
            conn.writer.close()
        if self._unix is not None:
            self._unix.close()
            self._unix = None
        for proc in self._procs:
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.terminate()
        for proc in self._procs:
            try:
                await asyncio.wait_for(proc.wait(), timeout=3.0)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()
        for t in self._conn_tasks:
            t.cancel()
        shutil.rmtree(self._tmp, ignore_errors=True)

    # --------------------------------------------------------------------- task connections
    async def _on_conn(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        current = asyncio.current_task()
        if current is not None:
            self._conn_tasks.add(current)
        hello = await read_msg(reader)
        if not hello or hello.get("op") != "hello":
            writer.close()
            return
        conn = TaskConn(str(hello["role"]), int(hello["index"]), int(hello["pid"]), str(hello["task_arn"]), writer)
        if conn.role == "app":
            self.apps.append(conn)
        else:
            conn.free = self.cfg.sidekiq_concurrency
            self.workers.append(conn)
        self._hello.set()
        try:
            async for op, msg in messages(reader):
                if op == "resp":
                    fut = conn.pending.pop(int(msg["i"]), None)
                    if fut is not None and not fut.done():
                        fut.set_result(int(msg["s"]))
                elif op == "done":
                    self.queue.done(bool(msg.get("ok", True)))
                    conn.free += 1
                    self._dispatch_jobs()
                elif op == "metrics":
                    ts = int(msg["ts"])
                    for name, tags, value in msg["points"]:
                        self.store.add(name, tags, ts, value)
        finally:
            conn.alive = False
            for fut in conn.pending.values():
                if not fut.done():
                    fut.set_result(502)
            conn.pending.clear()
            if current is not None:
                self._conn_tasks.discard(current)

    def _next_app(self) -> TaskConn | None:
        n = len(self.apps)
        for _ in range(n):
            conn = self.apps[next(self._rr) % n]
            if conn.alive:
                return conn
        return None

    async def _call(self, op: str, endpoint: str = "") -> int:
        conn = self._next_app()
        if conn is None:
            return 502
        rid = next(self._ids)
        fut: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        conn.pending[rid] = fut
        conn.writer.write(encode({"op": op, "i": rid, "e": endpoint}))
        return await fut

    # ------------------------------------------------------------------ Backend for the front
    async def call_app(self, endpoint: str) -> int:
        """Have the next app task (round robin, like an ALB) serve one request; its HTTP status."""
        return await self._call("req", endpoint)

    async def health(self) -> int:
        return await self._call("health")

    def enqueue_job(self) -> int | None:
        job_id = self.queue.push(time.time())
        self._dispatch_jobs()
        return job_id

    def _dispatch_jobs(self) -> None:
        live = [w for w in self.workers if w.alive]
        while self.queue.waiting and live:
            free = [w for w in live if w.free > 0]
            if not free:
                return
            self._worker_rr = (self._worker_rr + 1) % len(free)
            w = free[self._worker_rr]
            w.free -= 1
            w.writer.write(encode({"op": "job", "id": self.queue.pop()}))

    async def _queue_metrics(self) -> None:
        """Sidekiq's own numbers (as its Redis-backed stats report them), once a second: Sidekiq Enterprise's
        documented ``sidekiq.enqueued`` (a total) and the per-queue figures teams publish as custom metrics."""
        tags = [f"ecs_cluster_name:{self.cfg.cluster}", f"ecs_service:{self.cfg.sidekiq_service}", "queue:default"]
        while True:
            ts = await each_second()
            processed, failed, enqueued = self.queue.take_counts()
            self.store.add("sidekiq.enqueued", tags[:2], ts, float(len(self.queue.waiting)))  # all queues' total
            for name, value in (
                ("sidekiq.queue.size", len(self.queue.waiting)),
                ("sidekiq.queue.latency", self.queue.latency(time.time())),
                ("sidekiq.jobs.count", processed),
                ("sidekiq.jobs.failure", failed),
                ("sidekiq.jobs.enqueued", enqueued),
                ("sidekiq.busy", self.queue.in_flight),
            ):
                self.store.add(name, tags, ts, float(value))


async def serve(
    cfg: SandboxConfig,
    port: int = 0,
    *,
    on_ready: Callable[[SandboxServer], None] | None = None,
    duration_s: float | None = None,
    stop: asyncio.Event | None = None,
) -> None:
    """Run a sandbox (``cfg.stack``: the Python stand-in or the real Puma stack) until ``stop`` is
    set, ``duration_s`` passes, SIGTERM, or cancellation."""
    stacks: dict[str, type[PumaStack]] = {"puma": PumaStack, "rails": RailsStack}
    sup: SandboxServer = stacks[cfg.stack](cfg) if cfg.stack in stacks else Supervisor(cfg)
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    with contextlib.suppress(NotImplementedError, RuntimeError):
        loop.add_signal_handler(signal.SIGTERM, stop.set)
    try:
        await sup.start(port)
        if on_ready is not None:
            on_ready(sup)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=duration_s)
    finally:
        await asyncio.shield(sup.stop())
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.remove_signal_handler(signal.SIGTERM)


async def _watch_parent(parent_pid: int, stop: asyncio.Event) -> None:
    while not stop.is_set():
        if os.getppid() != parent_pid:
            stop.set()
            return
        await asyncio.sleep(0.25)


async def _main_async(cfg: SandboxConfig, port: int, parent_pid: int) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGINT, stop.set)
    watcher = asyncio.create_task(_watch_parent(parent_pid, stop))

    def ready(sup: SandboxServer) -> None:
        print(json.dumps({"ready": True, "port": sup.port, "pids": sup.pids}), flush=True)

    try:
        await serve(cfg, port, on_ready=ready, stop=stop)
    finally:
        watcher.cancel()


def main(argv: list[str]) -> int:
    port, parent_pid = int(argv[0]), int(argv[1])
    die_with_parent(signal.SIGTERM)
    if os.getppid() != parent_pid:
        return 1
    try:
        cfg = SandboxConfig.from_json(sys.stdin.readline())
        asyncio.run(_main_async(cfg, port, parent_pid))
    except CapacityError as exc:
        print(f"capacity: error: {exc}", file=sys.stderr, flush=True)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
