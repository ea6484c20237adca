"""The Rails stack's database figures, as the Datadog postgres integration and a Rails app publish them.

Beside ``AgentCollector`` (ECS Fargate, Puma, Redis), every ``interval_s`` it publishes into the
metric store:

- the postgres integration's metrics (names, types and units from its ``metadata.csv`` in
  DataDog/integrations-core ``postgres/``; not in this project's reference CSVs), tagged ``db``:

  ===================================  =====  ==================  ======================================
  ``postgresql.connections``           gauge  connection          ``numbackends`` of the database
  ``postgresql.max_connections``       gauge  connection          the server's ``max_connections``
  ``postgresql.percent_usage_connections`` gauge fraction         all backends / ``max_connections`` (0..1)
  ``postgresql.locks``                 gauge  lock                ``pg_locks`` rows by ``lock_mode``,
                                                                  ``lock_type`` and ``granted``
  ``postgresql.waiting_queries``       gauge  (none)              active queries waiting on a lock
  ``postgresql.transactions.open``     gauge  transaction         backends inside a transaction
  ``postgresql.commits``               gauge  transaction/second  ``xact_commit`` rate
  ``postgresql.rollbacks``             gauge  transaction/second  ``xact_rollback`` rate
  ``postgresql.deadlocks``             gauge  lock/second         ``deadlocks`` rate
  ===================================  =====  ==================  ======================================

  Two narrowings, both so the figure means *lock waits*: ``postgresql.locks`` counts every lock of
  the database including transaction-id locks (a row-lock waiter waits on the holder's transaction
  id, which the integration's join on ``pg_class`` would drop), and ``postgresql.waiting_queries``
  counts active backends whose ``wait_event_type`` is ``Lock`` (the integration's counts any wait event).

- the ActiveRecord connection pool of every app task (``ActiveRecord::Base.connection_pool.stat``,
  read from each Puma process's stats thread), under the task's tags. These are **custom** metrics
  (no Datadog integration emits them; a Rails team publishes them with DogStatsD):
  ``rails.active_record.pool.size``, ``.connections``, ``.busy``, ``.idle`` and ``.waiting``
  (threads blocked checking out a connection), gauges, unit connection (waiting: thread).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from dataclasses import dataclass, field

from capacity.sandbox.listen import HOST
from capacity.sandbox.metricstore import MetricStore
from capacity.sandbox.stack.collector import next_tick

POOL_FIELDS = ("size", "connections", "busy", "idle", "waiting")
CUSTOM_METRICS = tuple(f"rails.active_record.pool.{f}" for f in POOL_FIELDS)
"""Published by no Datadog integration: the app's own (DogStatsD) figures."""
MARK = "__capacity_end__"

_DB_QUERY = """
SELECT 'conn', d.numbackends, '', '', '' FROM pg_stat_database d WHERE d.datname = '{db}'
UNION ALL SELECT 'all', (SELECT sum(numbackends) FROM pg_stat_database), '', '', ''
UNION ALL SELECT 'max', current_setting('max_connections')::bigint, '', '', ''
UNION ALL SELECT 'xact', d.xact_commit, d.xact_rollback::text, d.deadlocks::text, '' FROM pg_stat_database d
  WHERE d.datname = '{db}'
UNION ALL SELECT 'wait', count(*), '', '', '' FROM pg_stat_activity a
  WHERE a.datname = '{db}' AND a.state = 'active' AND a.wait_event_type = 'Lock'
UNION ALL SELECT 'open', count(*), '', '', '' FROM pg_stat_activity a
  WHERE a.datname = '{db}' AND a.xact_start IS NOT NULL AND a.pid <> pg_backend_pid()
UNION ALL SELECT 'lock', count(*), l.mode, l.locktype, l.granted::text FROM pg_locks l
  JOIN pg_database d ON d.oid = l.database OR (l.database IS NULL AND d.datname = '{db}')
  WHERE d.datname = '{db}' AND l.pid <> pg_backend_pid() GROUP BY l.mode, l.locktype, l.granted
"""


class PsqlSession:
    """One long-lived ``psql`` connection (no Python PostgreSQL driver needed): a query, then a marker line."""

    def __init__(self, argv: list[str]) -> None:
        self.argv = argv
        self._proc: asyncio.subprocess.Process | None = None

    async def _ensure(self) -> asyncio.subprocess.Process:
        if self._proc is None or self._proc.returncode is not None:
            self._proc = await asyncio.create_subprocess_exec(
                *self.argv, "-A", "-t", "-F", "|", "-v", "ON_ERROR_STOP=0",
                stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
            )  # fmt: skip
        return self._proc

    async def rows(self, sql: str, timeout_s: float = 2.0) -> list[list[str]]:
        proc = await self._ensure()
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write(f"{sql.strip().rstrip(';')};\n\\echo {MARK}\n".encode())
        await proc.stdin.drain()
        out: list[list[str]] = []
        try:
            async with asyncio.timeout(timeout_s):
                while True:
                    line = (await proc.stdout.readline()).decode(errors="replace")
                    if not line:
                        raise ConnectionError("psql exited")
                    line = line.rstrip("\n")
                    if line == MARK:
                        return out
                    if line:
                        out.append(line.split("|"))
        except (TimeoutError, ConnectionError):
            await self.close()  # out of step with its output: start a fresh one next round
            raise

    async def close(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()


@dataclass
class PoolView:
    """One app task's ActiveRecord pool: its tags and the port of its Puma process's stats thread."""

    tags: tuple[str, ...]
    port: int


@dataclass
class _Rates:
    """Counters of the previous round, to publish per-second rates as the integration does."""

    last: dict[str, tuple[float, float]] = field(default_factory=dict)

    def rate(self, key: str, now: float, value: float) -> float | None:
        prev = self.last.get(key)
        self.last[key] = (now, value)
        if prev is None or now <= prev[0] or value < prev[1]:
            return None
        return (value - prev[1]) / (now - prev[0])


def db_points(rows: list[list[str]], rates: _Rates, now: float) -> list[tuple[str, tuple[str, ...], float]]:
    """The integration's metrics from one round of ``_DB_QUERY`` rows (name, extra tags, value)."""
    out: list[tuple[str, tuple[str, ...], float]] = []
    by_kind: dict[str, list[str]] = {}
    for row in rows:
        if len(row) < 5:
            continue
        kind = row[0]
        if kind == "lock":
            tags = (f"lock_mode:{row[2]}", f"lock_type:{row[3]}", f"granted:{row[4] == 'true'}".lower())
            out.append(("postgresql.locks", tags, float(row[1])))
        else:
            by_kind[kind] = row
    simple = {
        "conn": "postgresql.connections",
        "wait": "postgresql.waiting_queries",
        "open": "postgresql.transactions.open",
    }
    for kind, name in simple.items():
        if kind in by_kind:
            out.append((name, (), float(by_kind[kind][1])))
    if "max" in by_kind:
        mx = float(by_kind["max"][1])
        out.append(("postgresql.max_connections", (), mx))
        if "all" in by_kind and mx > 0:
            out.append(("postgresql.percent_usage_connections", (), float(by_kind["all"][1] or 0) / mx))
    if "xact" in by_kind:
        _, commits, rollbacks, deadlocks, _ = by_kind["xact"][:5]
        for name, value in (("commits", commits), ("rollbacks", rollbacks), ("deadlocks", deadlocks)):
            r = rates.rate(name, now, float(value))
            if r is not None:
                out.append((f"postgresql.{name}", (), r))
    return out


async def read_pool(port: int, timeout_s: float = 1.0) -> dict[str, float] | None:
    """One Puma process's ``connection_pool.stat`` (None when it does not answer in time)."""
    try:
        async with asyncio.timeout(timeout_s):
            reader, writer = await asyncio.open_connection(HOST, port)
            try:
                raw = await reader.read()
            finally:
                writer.close()
    except (OSError, TimeoutError):
        return None
    try:
        body = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(body, dict):
        return None
    return {k: float(v) for k, v in body.items() if k in POOL_FIELDS and isinstance(v, int | float)}


class DatabaseCollector:
    """Publishes the postgres integration's and the ActiveRecord pools' figures until cancelled."""

    def __init__(
        self,
        store: MetricStore,
        psql_argv: list[str],
        pools: list[PoolView],
        *,
        db_tags: tuple[str, ...],
        database: str,
        interval_s: float = 1.0,
    ) -> None:
        self.store = store
        self.session = PsqlSession(psql_argv)
        self.pools = pools
        self.db_tags = db_tags
        self.query = _DB_QUERY.format(db=database)
        self.interval_s = interval_s
        self._rates = _Rates()

    async def run(self) -> None:
        try:
            while True:
                ts = await next_tick(self.interval_s)
                await self.collect(ts)
        finally:
            await self.session.close()

    async def collect(self, ts: int) -> None:
        """One round; a source that fails this round publishes nothing (as the agent)."""
        stats = await asyncio.gather(*(read_pool(p.port) for p in self.pools))
        for pool, st in zip(self.pools, stats, strict=True):
            for key, value in (st or {}).items():
                self.store.add(f"rails.active_record.pool.{key}", pool.tags, ts, value)
        with contextlib.suppress(TimeoutError, ConnectionError, OSError, ValueError):
            rows = await self.session.rows(self.query)
            for name, tags, value in db_points(rows, self._rates, time.monotonic()):
                self.store.add(name, (*self.db_tags, *tags), ts, value)
