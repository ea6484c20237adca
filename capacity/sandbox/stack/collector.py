"""An agent-like collector: what the Datadog agent would publish for the real stack, in the metric store.

Every ``interval_s`` (1 s here so tests are quick; the agent's own checks run every 15 s, the ECS
Fargate check every 20 s) it runs its *checks*, each publishing what one integration reads, under
the integration's own names, types, units and tags (``capacity/data/agent_metrics``):

- ECS Fargate check: ``ecs.fargate.cpu.percent`` (100 = one vCPU), ``ecs.fargate.mem.usage`` (page
  cache included), ``ecs.fargate.mem.cache`` and ``ecs.fargate.mem.limit`` per container (tag
  ``ecs_container_name``) of every task, including the small ``datadog-agent`` and ``log-router``
  sidecars every Fargate task of the team carries; always tagged ``task_arn``.
- Puma check (control app ``/stats``): ``puma.backlog``, ``puma.running``, ``puma.pool_capacity``,
  ``puma.max_threads`` per app task; a snapshot, as the check takes. Tagged ``task_arn`` only at
  ``orchestrator`` tag cardinality (``[sandbox] tag_cardinality``; the agent's default is ``low``).
- Redis check with ``keys: [queue:default]``: ``redis.key.length`` tagged ``key:queue:default``, and
  *no point* while the queue is empty (Redis deletes an empty list); and the oldest job's age as
  ``sidekiq.queue.latency``, a custom metric (what a team publishes from open-source Sidekiq's
  ``Sidekiq::Queue#latency``; Sidekiq Enterprise's own metrics are not emitted).

Checks are a list: another integration (a Postgres check, a Rails pool) is one more entry.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import aiohttp
import psutil

from capacity.sandbox.agent_tags import Cardinality, check_tags
from capacity.sandbox.metricstore import MetricStore
from capacity.sandbox.stack.resp import RedisConnection, RedisReplyError

QUEUE_KEY = "queue:default"
MIB = 1024 * 1024


@dataclass(frozen=True)
class Sidecar:
    """A small container beside the main one: typical CPU % range and memory, drawn each interval."""

    name: str
    cpu_pct: tuple[float, float]
    mem_mib: float
    limit_mib: float


SIDECARS: tuple[Sidecar, ...] = (
    Sidecar("datadog-agent", (1.5, 4.0), 95.0, 256.0),
    Sidecar("log-router", (0.3, 1.5), 30.0, 128.0),
)


@dataclass
class TaskView:
    """One ECS task as the agent sees it: task tags, its main container and that container's process."""

    tags: tuple[str, ...]
    container: str
    pid: int
    mem_limit_bytes: int
    control_port: int | None = None
    _proc: psutil.Process | None = field(default=None, repr=False)

    def sample(self) -> tuple[float, int, int]:
        """CPU % since the previous sample (100 = one vCPU), resident memory and its file-backed (page
        cache) part, of the main container."""
        if self._proc is None:
            self._proc = psutil.Process(self.pid)
            self._proc.cpu_percent(None)
        with self._proc.oneshot():
            mem = self._proc.memory_info()
            return self._proc.cpu_percent(None), int(mem.rss), int(getattr(mem, "shared", 0))


async def next_tick(interval_s: float) -> int:
    """Sleep to the next multiple of ``interval_s``; return the whole second that just ended."""
    now = time.time()
    nxt = (math.floor(now / interval_s) + 1) * interval_s
    await asyncio.sleep(nxt - now)
    return math.ceil(nxt) - 1


@dataclass
class Round:
    """What one collection round's checks share: the second, the HTTP session, the Redis connection."""

    ts: int
    session: aiohttp.ClientSession
    redis: RedisConnection


Check = Callable[[Round], Awaitable[None]]
"""One integration's collection for one round; publishing nothing when its target does not answer."""


class AgentCollector:
    """Publishes the stack's agent metrics into ``store`` until cancelled."""

    def __init__(
        self,
        store: MetricStore,
        tasks: list[TaskView],
        *,
        redis_port: int,
        queue_tags: tuple[str, ...],
        interval_s: float = 1.0,
        seed: int = 0,
        cardinality: Cardinality = "orchestrator",
    ) -> None:
        self.store = store
        self.tasks = tasks
        self.redis_port = redis_port
        self.queue_tags = queue_tags
        self.interval_s = interval_s
        self.cardinality: Cardinality = cardinality
        self._rng = random.Random(seed)
        self.checks: list[Check] = [self.ecs_fargate, self.puma, self.redis_queue]
        """The integrations collected each round, in order; append one to publish more."""

    async def run(self) -> None:
        redis = await RedisConnection.open("127.0.0.1", self.redis_port)
        timeout = aiohttp.ClientTimeout(total=max(1.0, self.interval_s))
        try:
            async with aiohttp.ClientSession(timeout=timeout) as session:
                while True:
                    ts = await next_tick(self.interval_s)
                    await self.collect(ts, session, redis)
        finally:
            await redis.close()

    async def collect(self, ts: int, session: aiohttp.ClientSession, redis: RedisConnection) -> None:
        """One round of every check; a check that fails this round publishes nothing (as the agent)."""
        rnd = Round(ts, session, redis)
        for check in self.checks:
            with contextlib.suppress(ConnectionError, OSError, RedisReplyError, aiohttp.ClientError, TimeoutError):
                await check(rnd)

    # ------------------------------------------------------------------------------ the checks
    async def ecs_fargate(self, rnd: Round) -> None:
        for task in self.tasks:
            self._containers(rnd.ts, task)

    async def puma(self, rnd: Round) -> None:
        stats = await asyncio.gather(*(self._puma_stats(rnd.session, t) for t in self.tasks))
        for task, st in zip(self.tasks, stats, strict=True):
            if st is None:
                continue
            tags = check_tags((*task.tags, f"ecs_container_name:{task.container}"), self.cardinality)
            for key in ("backlog", "running", "pool_capacity", "max_threads"):
                value = st.get(key)
                if isinstance(value, int | float):
                    self.store.add(f"puma.{key}", tags, rnd.ts, float(value))

    @staticmethod
    async def _puma_stats(session: aiohttp.ClientSession, task: TaskView) -> dict[str, object] | None:
        if task.control_port is None:
            return None
        try:
            async with session.get(f"http://127.0.0.1:{task.control_port}/stats") as resp:
                body = await resp.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, ValueError):
            return None
        return body if isinstance(body, dict) else None

    def _containers(self, ts: int, task: TaskView) -> None:
        try:
            cpu, rss, cache = task.sample()
        except psutil.Error:
            return
        rows = [(task.container, cpu, float(rss), float(min(cache, rss)), float(task.mem_limit_bytes))]
        for car in SIDECARS:
            jitter = self._rng.uniform(0.97, 1.03)
            used = car.mem_mib * MIB * jitter
            rows.append((car.name, self._rng.uniform(*car.cpu_pct), used, 0.1 * used, car.limit_mib * MIB))
        for container, cpu_pct, usage, cached, limit in rows:
            tags = (*task.tags, f"ecs_container_name:{container}")
            self.store.add("ecs.fargate.cpu.percent", tags, ts, cpu_pct)
            self.store.add("ecs.fargate.mem.usage", tags, ts, usage)
            self.store.add("ecs.fargate.mem.cache", tags, ts, cached)
            self.store.add("ecs.fargate.mem.limit", tags, ts, limit)

    async def redis_queue(self, rnd: Round) -> None:
        redis, ts = rnd.redis, rnd.ts
        length = await redis.command("LLEN", QUEUE_KEY)
        oldest = await redis.command("LINDEX", QUEUE_KEY, "-1")  # Sidekiq pushes left, fetches right
        age = 0.0
        if isinstance(oldest, bytes):
            try:
                age = max(0.0, time.time() - float(json.loads(oldest)["enqueued_at"]))
            except (ValueError, KeyError, TypeError):
                age = 0.0
        key_tags = (
            *self.queue_tags,
            f"key:{QUEUE_KEY}",
            "key_type:list",
            "redis_host:127.0.0.1",
            f"redis_port:{self.redis_port}",
            "redis_role:master",
        )
        if isinstance(length, int) and length > 0:  # an empty list does not exist in Redis: no point
            self.store.add("redis.key.length", key_tags, ts, float(length))
        self.store.add("sidekiq.queue.latency", (*self.queue_tags, "queue:default"), ts, age)
