"""``PumaStack``: the sandbox on real Redis, Puma and Sidekiq processes, behind the sandbox's own front.

The front (``capacity.sandbox.front``) stays the load balancer: it parses and validates each workload
request and keeps the synthetic records (404/409 as before); for the service time it calls the next
Puma process round robin (``GET /call/<endpoint>`` with the drawn wait and CPU), and Puma's Rack app
sleeps that long on one of its ``--threads`` threads. The summary call's Rack handler pushes a real
Sidekiq job to Redis, which ``--sidekiq-tasks`` Sidekiq processes drain ``--sidekiq-concurrency`` at
a time. Nothing reports metrics by itself: an agent-like collector reads Puma's control app, Redis and
each process's CPU and memory, as the Datadog agent would (see ``collector``).

Each Puma and Sidekiq process is one "task" (its own ``task_arn``). Capacity by formula is the same
as the Python stack's: app_tasks x threads / mean service time.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import random
import shutil
import tempfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import aiohttp
from aiohttp import web

from capacity.sandbox.config import ENDPOINTS, SandboxConfig
from capacity.sandbox.front import build_app
from capacity.sandbox.listen import HOST, bind_port, serve_front
from capacity.sandbox.metricstore import MetricStore
from capacity.sandbox.service import draw_slot_ms
from capacity.sandbox.stack.children import START_TIMEOUT_S, Child, free_port, spawn
from capacity.sandbox.stack.collector import AgentCollector, TaskView
from capacity.sandbox.stack.debian import require_packages
from capacity.sandbox.stack.resp import RedisConnection
from capacity.sandbox.state import ClinicData
from capacity.sandbox.tasks import task_tags

RUBY_DIR = Path(__file__).resolve().parent / "ruby"
APP_CONTAINER = "app"
SIDEKIQ_CONTAINER = "sidekiq"
SIDEKIQ_SHUTDOWN_S = 1
"""Sidekiq's own shutdown timeout (-t): jobs still running then are abandoned, the sandbox is stopping."""
_ENQUEUES = {e.name: e.enqueues for e in ENDPOINTS}


def _registered(conn: RedisConnection, want: int) -> Callable[[], Awaitable[bool]]:
    """A probe: at least ``want`` Sidekiq processes have sent their first heartbeat to Redis."""

    async def probe() -> bool:
        count = await conn.command("SCARD", "processes")
        return isinstance(count, int) and count >= want

    return probe


@dataclass(frozen=True)
class PumaTask:
    """One Puma process: where it serves and where its control app answers."""

    child: Child
    port: int
    control_port: int

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"


class PumaStack:
    """Runs the real stack inside the current asyncio loop; ``start`` then ``stop`` (same shape as
    ``Supervisor``, and the same ``Backend`` for the front)."""

    def __init__(self, cfg: SandboxConfig) -> None:
        self.cfg = cfg
        self.store = MetricStore()
        self.data = ClinicData(cfg.seed, cfg.records)
        self.port = 0
        self.redis_port = 0
        self.apps: list[PumaTask] = []
        self.sidekiqs: list[Child] = []
        self._children: list[Child] = []
        self._tmp = Path(tempfile.mkdtemp(prefix="capacity-stack-"))
        self._rng = random.Random(cfg.seed)
        self._rr = itertools.count()
        self._jobs = itertools.count(1)
        self._session: aiohttp.ClientSession | None = None
        self._runner: web.AppRunner | None = None
        self._collector: asyncio.Task[None] | None = None

    @property
    def pids(self) -> list[int]:
        """Redis, then every Puma and Sidekiq process."""
        return [c.pid for c in self._children]

    # ------------------------------------------------------------------------- lifecycle
    async def start(self, port: int = 0) -> None:
        require_packages()
        sock = bind_port(port)
        self.port = sock.getsockname()[1]
        try:
            await self._start_redis()
            env = {**os.environ, "REDIS_URL": f"redis://{HOST}:{self.redis_port}/0"}
            await asyncio.gather(*(self._start_puma(i, env) for i in range(self.cfg.app_tasks)))
            await self._start_sidekiqs(env)
            # Persistent connections, up to threads + backlog per Puma: Puma queues that many (its
            # backlog); past it requests wait in the front, as in an ALB's surge queue.
            connector = aiohttp.TCPConnector(limit=0, limit_per_host=self.cfg.threads + self.cfg.backlog)
            self._session = aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=60))
            self._collector = asyncio.create_task(self._collect())
            self._runner = await serve_front(build_app(self.cfg, self), sock)
        except BaseException:
            sock.close()
            await self.stop()
            raise

    async def _start_redis(self) -> None:
        self.redis_port = free_port()
        argv = ["redis-server", "--port", str(self.redis_port), "--bind", HOST, "--save", "", "--appendonly", "no"]
        argv += ["--dir", str(self._tmp), "--protected-mode", "yes"]
        child = await spawn("redis-server", argv, dict(os.environ), self._tmp)
        self._children.append(child)

        async def pong() -> bool:
            conn = await RedisConnection.open(HOST, self.redis_port)
            try:
                return await conn.command("PING") == "PONG"
            finally:
                await conn.close()

        await child.wait_ready(pong)

    async def _start_puma(self, index: int, env: dict[str, str], boot_s: float = START_TIMEOUT_S) -> PumaTask:
        """One app task: Puma on a free port with its control app, ready once both answer within ``boot_s``."""
        port, control = free_port(), free_port()
        env = {**env, "CAPACITY_PUMA_THREADS": str(self.cfg.threads), "CAPACITY_PUMA_CONTROL_PORT": str(control)}
        argv = ["puma", "-C", str(RUBY_DIR / "puma.rb"), "-b", f"tcp://{HOST}:{port}"]
        child = await spawn(f"puma-{index}", argv, env, self._tmp)
        self._children.append(child)
        task = PumaTask(child, port, control)

        async def answers() -> bool:
            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as s:
                for url in (f"{task.url}/health", f"http://{HOST}:{control}/stats"):
                    async with s.get(url) as resp:
                        if resp.status != 200:
                            return False
            return True

        await child.wait_ready(answers, timeout_s=boot_s)
        self.apps.append(task)
        self.apps.sort(key=lambda t: t.child.name)
        return task

    def _sidekiq_argv(self, boot: Path) -> list[str]:
        argv = ["sidekiq", "-r", str(boot), "-c", str(self.cfg.sidekiq_concurrency)]
        return [*argv, "-q", "default", "-e", "production", "-t", str(SIDEKIQ_SHUTDOWN_S)]

    async def _start_sidekiqs(self, env: dict[str, str], boot: Path = RUBY_DIR / "worker.rb") -> None:
        argv = self._sidekiq_argv(boot)
        for i in range(self.cfg.sidekiq_tasks):
            child = await spawn(f"sidekiq-{i}", argv, env, self._tmp)
            self._children.append(child)
            self.sidekiqs.append(child)
        conn = await RedisConnection.open(HOST, self.redis_port)
        try:
            for n, child in enumerate(self.sidekiqs, start=1):
                await child.wait_ready(_registered(conn, n))
        finally:
            await conn.close()

    async def stop(self) -> None:
        """Stop serving, then Sidekiq, Puma and Redis (terminate, then kill); remove the temp folder."""
        if self._collector is not None:
            self._collector.cancel()
            await asyncio.gather(self._collector, return_exceptions=True)
            self._collector = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._session is not None:
            await self._session.close()
            self._session = None
        await asyncio.gather(*(c.stop() for c in self.sidekiqs))
        await asyncio.gather(*(t.child.stop() for t in self.apps))
        await asyncio.gather(*(c.stop() for c in self._children))
        shutil.rmtree(self._tmp, ignore_errors=True)

    async def _collect(self) -> None:
        cfg = self.cfg
        base = (f"ecs_cluster_name:{cfg.cluster}",)
        tasks = [
            TaskView(self._tags(cfg.app_service), APP_CONTAINER, t.child.pid, cfg.mem_limit_bytes, t.control_port)
            for t in self.apps
        ]
        tasks += [
            TaskView(self._tags(cfg.sidekiq_service), SIDEKIQ_CONTAINER, c.pid, cfg.mem_limit_bytes)
            for c in self.sidekiqs
        ]
        queue_tags = (*base, f"ecs_service:{cfg.sidekiq_service}")
        collector = AgentCollector(
            self.store,
            tasks,
            redis_port=self.redis_port,
            queue_tags=queue_tags,
            interval_s=cfg.agent_interval_s,
            seed=cfg.seed,
            cardinality=cfg.tag_cardinality,
        )
        await collector.run()

    def _tags(self, service: str) -> tuple[str, ...]:
        return tuple(task_tags(self.cfg, service))

    # ------------------------------------------------------------------ Backend for the front
    def _next_app(self) -> PumaTask:
        return self.apps[next(self._rr) % len(self.apps)]

    def _call_params(self, endpoint: str) -> dict[str, str]:
        cfg = self.cfg
        wait_ms, cpu_ms = draw_slot_ms(self._rng, cfg.service_dist, cfg.mean_ms(endpoint), cfg.cpu_ms)
        failed = bool(cfg.error_rate) and self._rng.random() < cfg.error_rate
        params = {"wait_ms": f"{wait_ms:.3f}", "cpu_ms": f"{cpu_ms:.3f}", "status": "500" if failed else "200"}
        if cfg.mem_growth_kb > 0:
            params["leak_kb"] = f"{cfg.mem_growth_kb:g}"
        if _ENQUEUES.get(endpoint, 0.0) > 0:
            job_wait, job_cpu = draw_slot_ms(self._rng, cfg.service_dist, cfg.job_ms, cfg.cpu_ms)
            job_failed = bool(cfg.error_rate) and self._rng.random() < cfg.error_rate
            params |= {
                "job_wait_ms": f"{job_wait:.3f}",
                "job_cpu_ms": f"{job_cpu:.3f}",
                "job_fail": str(int(job_failed)),
            }
        return params

    async def _get(self, url: str, params: dict[str, str] | None = None) -> int:
        if self._session is None:
            return 502
        try:
            async with self._session.get(url, params=params) as resp:
                await resp.read()
                return resp.status
        except (aiohttp.ClientError, TimeoutError):
            return 502

    async def call_app(self, endpoint: str) -> int:
        """Have the next Puma process (round robin, like an ALB) serve one request; its HTTP status."""
        return await self._get(f"{self._next_app().url}/call/{endpoint}", self._call_params(endpoint))

    async def health(self) -> int:
        return await self._get(f"{self._next_app().url}/health")

    def enqueue_job(self) -> int | None:
        """The Rack app already pushed the real job to Redis; the front only needs an id for the reply."""
        return next(self._jobs)
