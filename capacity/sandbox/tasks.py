"""The sandbox's task processes: Puma-like app tasks and Sidekiq-like worker tasks.

Each is a separate OS process (as an ECS task is) connected to the supervisor over a Unix socket.
An app task holds ``threads`` request slots (an asyncio semaphore) and a bounded backlog of requests
waiting for one; past it, 503 at once. A worker task runs up to ``sidekiq_concurrency`` jobs. Both
report their own CPU and memory every second, and exit as soon as the supervisor goes away.

Run as ``python -m capacity.sandbox.tasks app|sidekiq INDEX SOCKET SUPERVISOR_PID CONFIG_JSON``.
"""

from __future__ import annotations

import asyncio
import math
import os
import random
import signal
import sys
import time
import uuid
from collections import defaultdict
from typing import Any

from capacity.sandbox import contention
from capacity.sandbox.agent_tags import check_tags
from capacity.sandbox.config import SandboxConfig
from capacity.sandbox.framing import encode, messages
from capacity.sandbox.procstats import ProcessSampler, die_with_parent
from capacity.sandbox.service import burn_cpu, draw_slot_ms

REGION_ACCOUNT = "us-gov-west-1:000000000000"


def task_tags(cfg: SandboxConfig, service: str) -> list[str]:
    arn = f"arn:aws:ecs:{REGION_ACCOUNT}:task/{cfg.cluster}/{uuid.uuid4().hex}"
    return [f"ecs_cluster_name:{cfg.cluster}", f"ecs_service:{service}", f"task_arn:{arn}"]


def _resource_points(cfg: SandboxConfig, sampler: ProcessSampler, task: list[str], container: str) -> list[list[Any]]:
    """The ECS Fargate check's figures for the task's one container (``[metrics] app_container`` /
    ``sidekiq_container`` name it: "app" and "sidekiq" by default)."""
    cpu, rss = sampler.sample()
    tags = [*task, f"ecs_container_name:{container}"]
    return [
        ["ecs.fargate.cpu.percent", tags, cpu],
        ["ecs.fargate.mem.usage", tags, rss],  # page cache included, as the agent's usage
        ["ecs.fargate.mem.cache", tags, min(rss, sampler.page_cache())],
        ["ecs.fargate.mem.limit", tags, cfg.mem_limit_bytes],
    ]


async def each_second() -> int:
    """Sleep to the next whole second; return the second that just ended."""
    now = time.time()
    nxt = math.floor(now) + 1
    await asyncio.sleep(nxt - now)
    return nxt - 1


MAX_CATCH_UP_S = 0.02
"""How far a slot may backdate its next start to absorb event-loop wake-up lag (see ``AppTask``)."""


class AppTask:
    """One Puma-like app task: ``threads`` slot workers, a bounded backlog, per-endpoint request stats.

    Each slot runs on a drift-free clock: a request that was already waiting when the previous one
    was due to end starts at that due time (up to ``MAX_CATCH_UP_S`` back), not when the event loop
    got round to it. Without this, timer overshoot (~1-3 ms a request) would shave several percent
    off the capacity the formula promises.
    """

    def __init__(self, cfg: SandboxConfig, index: int, writer: asyncio.StreamWriter) -> None:
        self.cfg = cfg
        self.writer = writer
        self.rng = random.Random(cfg.seed * 1000 + index)
        self.backlog: asyncio.Queue[tuple[int, str, float]] = asyncio.Queue()
        self.busy = 0
        self._busy_area = 0.0  # busy slots x seconds since the last metrics point
        self._busy_since = time.monotonic()
        self._points_at = self._busy_since
        self.rejected = 0
        self.tags = task_tags(cfg, cfg.app_service)
        self.hits: dict[tuple[str, int], int] = defaultdict(int)
        self.duration: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
        self._leak: list[bytes] = []
        self.slowdown = 1.0
        self.set_live_tasks(cfg.app_tasks)

    def set_live_tasks(self, n: int) -> None:
        """The shared bottleneck's slowdown for ``n`` live app tasks (the supervisor says when it changes)."""
        self.slowdown = contention.slowdown(n, self.cfg.contention_sigma, self.cfg.crosstalk_kappa)

    @property
    def waiting(self) -> int:
        return self.backlog.qsize()

    def _set_busy(self, delta: int) -> None:
        """Track busy slots over time, so the pool gauge is the second's average, not one snapshot."""
        now = time.monotonic()
        self._busy_area += self.busy * (now - self._busy_since)
        self._busy_since = now
        self.busy += delta

    def mean_busy(self) -> float:
        """Average busy slots since the previous call (one metrics interval)."""
        now = time.monotonic()
        area = self._busy_area + self.busy * (now - self._busy_since)
        span = now - self._points_at
        self._busy_area, self._busy_since, self._points_at = 0.0, now, now
        return area / span if span > 0 else float(self.busy)

    def submit(self, rid: int, endpoint: str) -> None:
        """Queue a request for a slot, or answer 503 at once when every slot is busy and the backlog full."""
        if self.busy + self.waiting >= self.cfg.threads and self.waiting >= self.cfg.backlog:
            self.rejected += 1
            self.writer.write(encode({"op": "resp", "i": rid, "s": 503}))
            return
        self.backlog.put_nowait((rid, endpoint, time.monotonic()))

    async def slot(self) -> None:
        """One Puma thread: take the next request, hold the slot for its service time, answer."""
        free_at = time.monotonic()
        while True:
            rid, endpoint, arrived = await self.backlog.get()
            self._set_busy(+1)
            now = time.monotonic()
            start = max(arrived, free_at, now - MAX_CATCH_UP_S)
            wait_ms, cpu_ms = draw_slot_ms(
                self.rng, self.cfg.service_dist, self.cfg.mean_ms(endpoint) * self.slowdown, self.cfg.cpu_ms
            )
            burn_cpu(cpu_ms)
            end = start + (wait_ms + cpu_ms) / 1000.0
            delay = end - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            free_at = end
            self._set_busy(-1)
            status = 500 if self.cfg.error_rate and self.rng.random() < self.cfg.error_rate else 200
            if self.cfg.mem_growth_kb > 0:
                self._leak.append(b"\x01" * int(self.cfg.mem_growth_kb * 1024))
            self.hits[(endpoint, status)] += 1
            d = self.duration[endpoint]
            d[0] += end - start
            d[1] += 1
            self.writer.write(encode({"op": "resp", "i": rid, "s": status}))

    def points(self, sampler: ProcessSampler) -> list[list[Any]]:
        t = self.tags
        pts = _resource_points(self.cfg, sampler, t, "app")
        busy = self.mean_busy()
        check = check_tags(t, self.cfg.tag_cardinality)  # the Puma check's tags: task_arn only at orchestrator
        pts += [
            ["puma.max_threads", check, self.cfg.threads],
            ["puma.pool_capacity", check, self.cfg.threads - busy],
            ["puma.busy_threads", check, busy],
            ["puma.backlog", check, self.waiting],
            ["puma.requests.rejected", check, self.rejected],  # custom: the stand-in's own 503 count
        ]
        self.rejected = 0
        for (endpoint, status), n in self.hits.items():
            rt = [*t, f"resource_name:{endpoint}", f"http.status_code:{status}"]
            pts.append(["trace.rack.request.hits", rt, n])
            if status >= 500:
                pts.append(["trace.rack.request.errors", rt, n])
        for endpoint, (total, count) in self.duration.items():
            if count:
                pts.append(["trace.rack.request.duration", [*t, f"resource_name:{endpoint}"], total / count])
        self.hits.clear()
        self.duration.clear()
        return pts


class WorkerTask:
    """One Sidekiq-like worker task: runs the jobs the supervisor hands it, ``concurrency`` at a time."""

    def __init__(self, cfg: SandboxConfig, index: int, writer: asyncio.StreamWriter) -> None:
        self.cfg = cfg
        self.writer = writer
        self.rng = random.Random(cfg.seed * 1000 + 500 + index)
        self.tags = task_tags(cfg, cfg.sidekiq_service)
        self.started = time.monotonic()

    def mean_job_ms(self) -> float:
        """``job_ms``, slowed by ``job_slowdown_per_hour`` for every hour this task has run (a fault option)."""
        hours = (time.monotonic() - self.started) / 3600.0
        return self.cfg.job_ms * (1.0 + self.cfg.job_slowdown_per_hour * hours)

    async def run_job(self, job_id: int) -> None:
        wait_ms, cpu_ms = draw_slot_ms(self.rng, self.cfg.service_dist, self.mean_job_ms(), self.cfg.cpu_ms)
        if wait_ms > 0:
            await asyncio.sleep(wait_ms / 1000.0)
        burn_cpu(cpu_ms)
        ok = not (self.cfg.error_rate and self.rng.random() < self.cfg.error_rate)
        self.writer.write(encode({"op": "done", "id": job_id, "ok": ok}))

    def points(self, sampler: ProcessSampler) -> list[list[Any]]:
        return _resource_points(self.cfg, sampler, self.tags, "sidekiq")


async def run_task(role: str, index: int, sock_path: str, cfg: SandboxConfig) -> None:
    reader, writer = await asyncio.open_unix_connection(sock_path)
    task: AppTask | WorkerTask = AppTask(cfg, index, writer) if role == "app" else WorkerTask(cfg, index, writer)
    writer.write(
        encode(
            {
                "op": "hello",
                "role": role,
                "index": index,
                "pid": os.getpid(),
                "task_arn": task.tags[-1].split(":", 1)[1],
            }
        )
    )
    sampler = ProcessSampler()
    running: set[asyncio.Task[None]] = set()

    async def report() -> None:
        while True:
            ts = await each_second()
            writer.write(encode({"op": "metrics", "ts": ts, "points": task.points(sampler)}))

    reporter = asyncio.create_task(report())
    if isinstance(task, AppTask):
        for _ in range(cfg.threads):
            slot = asyncio.create_task(task.slot())
            running.add(slot)
    try:
        async for op, msg in messages(reader):
            if op == "req" and isinstance(task, AppTask):
                task.submit(int(msg["i"]), str(msg["e"]))
                continue
            if op == "job" and isinstance(task, WorkerTask):
                t = asyncio.create_task(task.run_job(int(msg["id"])))
            elif op == "tasks" and isinstance(task, AppTask):
                task.set_live_tasks(int(msg["n"]))
                continue
            elif op == "health":
                writer.write(encode({"op": "resp", "i": msg["i"], "s": 200}))
                continue
            else:
                continue
            running.add(t)
            t.add_done_callback(running.discard)
    finally:
        reporter.cancel()
        for t in running:
            t.cancel()
        writer.close()


def main(argv: list[str]) -> int:
    role, index, sock_path, supervisor_pid, cfg_json = argv
    die_with_parent(signal.SIGKILL)
    if os.getppid() != int(supervisor_pid):  # the supervisor died before we could ask to follow it
        return 1
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C goes to the process group; the supervisor decides
    cfg = SandboxConfig.from_json(cfg_json)
    try:
        asyncio.run(run_task(role, int(index), sock_path, cfg))
    except (ConnectionError, FileNotFoundError):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
