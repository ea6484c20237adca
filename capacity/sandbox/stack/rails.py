"""``RailsStack``: the sandbox as a Rails API on PostgreSQL, Puma, Sidekiq and Redis (``--stack rails``).

Unlike ``--stack puma`` the app does the work itself: the front only balances (round robin over the
Puma processes, like an ALB) and forwards each workload request unchanged, adding the drawn VistA
wait and CPU work as headers. Rails (``ruby/rails/``) validates it, reads and writes PostgreSQL
through its ActiveRecord pool (``db_pool`` per task, default its threads), pushes the summary's
Sidekiq job to Redis, and answers 404/409 from the database. One PostgreSQL server
(``postgres.PostgresCluster``, ``db_max_connections``) is shared by every app and Sidekiq task;
with ``hot_rows`` every check-in also updates one of K shared rows under its row lock.

Where it limits, by construction (a request holds its connection from its first query to its end,
VistA wait included, as a Rails request does):

- Puma threads: ``app_tasks x threads / request time`` when the pool is as large as the threads;
- the ActiveRecord pool: ``app_tasks x db_pool / request time`` when the pool is smaller;
- the database: check-ins serialise on the hot rows' locks (each holds its lock for its CPU work
  and a few statements), whatever the number of app tasks;
- CPU: this machine's cores, shared by Rails, PostgreSQL and the load generator.

Metrics: ``AgentCollector`` (ECS Fargate, Puma, Redis) plus ``db_collector.DatabaseCollector`` (the
postgres integration, ActiveRecord pools). Stopping stops the front, Sidekiq, Puma, Redis, then
PostgreSQL, and removes the temporary folder with the database in it.
"""

from __future__ import annotations

import asyncio
import os

import aiohttp
from aiohttp import web

from capacity.sandbox.config import SandboxConfig
from capacity.sandbox.front import _json_errors, add_datadog_routes, add_workload_routes, error
from capacity.sandbox.listen import HOST, bind_port, serve_front
from capacity.sandbox.service import draw_wait_ms
from capacity.sandbox.stack.children import free_port
from capacity.sandbox.stack.collector import AgentCollector, TaskView
from capacity.sandbox.stack.db_collector import DatabaseCollector, PoolView
from capacity.sandbox.stack.debian import require_rails_packages
from capacity.sandbox.stack.postgres import DATABASE, PostgresCluster, cluster_records
from capacity.sandbox.stack.puma import APP_CONTAINER, RUBY_DIR, SIDEKIQ_CONTAINER, PumaStack

RAILS_DIR = RUBY_DIR / "rails"
SIDEKIQ_POOL_SPARE = 2
"""Sidekiq's ActiveRecord pool: its concurrency plus a spare for its own housekeeping."""
_FORWARD_HEADERS = ("Content-Type", "Accept")
_ENDPOINT_OF = {
    ("GET", "patient_demographics_status"): "get_demographics_status",
    ("POST", "patient_demographics_status"): "set_demographics_status",
    ("POST", "summary"): "appointment_summary",
    ("POST", "checkins"): "appointment_checkin",
}


class RailsStack(PumaStack):
    """Runs the Rails stack inside the current asyncio loop; ``start`` then ``stop``."""

    def __init__(self, cfg: SandboxConfig) -> None:
        super().__init__(cfg)
        self.db = PostgresCluster(self._tmp, cfg.db_max_connections)
        self._pool_ports: dict[str, int] = {}

    @property
    def pids(self) -> list[int]:
        """PostgreSQL, Redis, then every Puma and Sidekiq process."""
        return [*([self.db.child.pid] if self.db.child else []), *super().pids]

    async def start(self, port: int = 0) -> None:
        require_rails_packages()
        sock = bind_port(port)
        self.port = sock.getsockname()[1]
        try:
            await self.db.start(cluster_records(self.cfg.seed, self.cfg.records), self.cfg.hot_rows)
            await self._start_redis()
            env = {
                **os.environ,
                "REDIS_URL": f"redis://{HOST}:{self.redis_port}/0",
                "RAILS_ENV": "production",
                "CAPACITY_HOT_ROWS": str(self.cfg.hot_rows),
            }
            await asyncio.gather(*(self._start_rails(i, env) for i in range(self.cfg.app_tasks)))
            sidekiq_env = {**env, "DATABASE_URL": self.db.url(self.cfg.sidekiq_concurrency + SIDEKIQ_POOL_SPARE)}
            await self._start_sidekiqs(sidekiq_env, RAILS_DIR / "boot.rb")
            connector = aiohttp.TCPConnector(limit=0, limit_per_host=self.cfg.threads + self.cfg.backlog)
            self._session = aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=60))
            self._collector = asyncio.create_task(self._collect())
            self._runner = await serve_front(self._front(), sock)
        except BaseException:
            sock.close()
            await self.stop()
            raise

    async def _start_rails(self, index: int, env: dict[str, str]) -> None:
        """One app task: Puma serving the Rails app, with its pool stats thread on its own port."""
        pool_port = free_port()
        env = {
            **env,
            "DATABASE_URL": self.db.url(self.cfg.pool_per_task),
            "CAPACITY_POOL_STATS_PORT": str(pool_port),
            "CAPACITY_RACKUP": str(RAILS_DIR / "config.ru"),
        }
        task = await self._start_puma(index, env, boot_s=60.0)  # Rails boots in a few seconds on a busy machine
        self._pool_ports[task.child.name] = pool_port

    async def stop(self) -> None:
        """Everything ``PumaStack.stop`` stops, then PostgreSQL; the temp folder (database and all) goes."""
        try:
            await super().stop()
        finally:
            await self.db.stop()

    async def _collect(self) -> None:
        cfg = self.cfg
        apps = [(self._tags(cfg.app_service), t) for t in self.apps]
        tasks = [TaskView(tags, APP_CONTAINER, t.child.pid, cfg.mem_limit_bytes, t.control_port) for tags, t in apps]
        tasks += [
            TaskView(self._tags(cfg.sidekiq_service), SIDEKIQ_CONTAINER, c.pid, cfg.mem_limit_bytes)
            for c in self.sidekiqs
        ]
        base = (f"ecs_cluster_name:{cfg.cluster}",)
        agent = AgentCollector(
            self.store,
            tasks,
            redis_port=self.redis_port,
            queue_tags=(*base, f"ecs_service:{cfg.sidekiq_service}"),
            interval_s=cfg.agent_interval_s,
            seed=cfg.seed,
        )
        pools = [
            PoolView((*tags, f"ecs_container_name:{APP_CONTAINER}"), self._pool_ports[t.child.name]) for tags, t in apps
        ]
        database = DatabaseCollector(
            self.store,
            [*self.db.psql_argv(), "-d", DATABASE],
            pools,
            db_tags=(*base, f"db:{DATABASE}", f"port:{self.db.port}"),
            database=DATABASE,
            interval_s=cfg.agent_interval_s,
        )
        await asyncio.gather(agent.run(), database.run())

    # ------------------------------------------------------------------------------- the front
    def _front(self) -> web.Application:
        """Workload paths forwarded to Rails (unknown ones and wrong methods answered here, as every
        sandbox does); ``/health`` and the Datadog API served by the front itself."""
        app = web.Application(middlewares=[_json_errors], client_max_size=1024 * 1024)
        app.router.add_get("/health", self._health)
        add_workload_routes(app, lambda _name: self._forward)
        add_datadog_routes(app, self.cfg, self)
        return app

    async def _health(self, request: web.Request) -> web.Response:
        status = await self.health()
        body = {"status": "ok" if status == 200 else "degraded", "app_tasks": self.cfg.app_tasks}
        return web.json_response(body, status=status)

    def _timing_headers(self, endpoint: str) -> dict[str, str]:
        cfg = self.cfg
        wait_ms = draw_wait_ms(self._rng, cfg.service_dist, cfg.mean_ms(endpoint))
        headers = {"X-Capacity-Wait-Ms": f"{wait_ms:.3f}", "X-Capacity-Cpu-Ms": f"{cfg.cpu_ms:.3f}"}
        if endpoint == "appointment_summary":
            job_wait = draw_wait_ms(self._rng, cfg.service_dist, max(cfg.job_ms - cfg.cpu_ms, 0.0))
            headers |= {"X-Capacity-Job-Wait-Ms": f"{job_wait:.3f}", "X-Capacity-Job-Cpu-Ms": f"{cfg.cpu_ms:.3f}"}
        return headers

    async def _forward(self, request: web.Request) -> web.Response:
        """Send the request to the next Puma process as it came; its answer as it came back."""
        if self._session is None or not self.apps:
            return error(502, "app task gone")
        last = request.path.rstrip("/").rsplit("/", 1)[-1]
        headers = {h: request.headers[h] for h in _FORWARD_HEADERS if h in request.headers}
        headers |= self._timing_headers(_ENDPOINT_OF.get((request.method, last), ""))
        body = await request.read()
        url = f"{self._next_app().url}{request.rel_url}"
        try:
            async with self._session.request(request.method, url, data=body, headers=headers) as resp:
                payload = await resp.read()
                kind = resp.headers.get("Content-Type", "application/json")
                return web.Response(status=resp.status, body=payload, headers={"Content-Type": kind})
        except (aiohttp.ClientError, TimeoutError):
            return error(502, "app task gone")
