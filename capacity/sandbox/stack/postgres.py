"""A private PostgreSQL 15 cluster for the Rails stack: initdb, one server process, schema and test data.

The cluster lives in the stack's temporary folder and listens on a free loopback port (its Unix
socket in its own data folder). PostgreSQL refuses to run as root, so as root the data folder is
handed to the ``postgres`` user (Debian's package creates it) and initdb and the server run as
that user. The server is a supervised child like Redis (it dies with the supervisor); stopping it
is PostgreSQL's fast shutdown, then the folder goes with the stack's.

The data: every synthetic record of the workload's test-data seed (``capacity.sandbox.records``)
as an appointment and its patient, and ``hot_rows`` clinic counters, loaded with ``COPY`` through
``psql``. ``fsync`` is off: a throwaway cluster, nothing to protect, and commits not bound to this
machine's disk.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import pwd
import shutil
import signal
from dataclasses import dataclass
from pathlib import Path

from capacity.sandbox.listen import HOST
from capacity.sandbox.records import Record, synthetic_records
from capacity.sandbox.stack.children import Child, StackStartError, free_port, spawn

PG_BIN = Path("/usr/lib/postgresql/15/bin")
DATABASE = "capacity"
DB_USER = "postgres"
SCHEMA = Path(__file__).resolve().parent / "ruby" / "rails" / "schema.sql"
RUN_AS_ROOT_USER = "postgres"
STOP_S = 5.0


def server_user() -> str | None:
    """The user initdb and the server run as: ``postgres`` when we are root, else ourselves (None)."""
    return RUN_AS_ROOT_USER if os.geteuid() == 0 else None


def records_csv(records: list[Record]) -> tuple[str, str]:
    """(appointments, patients) as CSV for ``COPY``: one appointment per record, one patient per DFN."""
    appts, patients = io.StringIO(), io.StringIO()
    seen: set[str] = set()
    for r in records:
        appts.write(f"{r.ien},{r.dfn},{r.sta3n},{r.clinic}\n")
        if r.dfn not in seen:
            seen.add(r.dfn)
            patients.write(f"{r.dfn},{r.sta3n}\n")
    return appts.getvalue(), patients.getvalue()


@dataclass
class PostgresCluster:
    """One cluster in ``root/pgdata``; ``start`` then ``stop``."""

    root: Path
    max_connections: int
    port: int = 0
    child: Child | None = None

    @property
    def data_dir(self) -> Path:
        return self.root / "pgdata"

    def url(self, pool: int) -> str:
        """The ``DATABASE_URL`` of a client with an ActiveRecord pool of ``pool`` connections."""
        return f"postgres://{DB_USER}@{HOST}:{self.port}/{DATABASE}?pool={pool}"

    def psql_argv(self) -> list[str]:
        return ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", HOST, "-p", str(self.port), "-U", DB_USER]

    async def start(self, records: list[Record], hot_rows: int) -> None:
        user = server_user()
        self.data_dir.mkdir(mode=0o700)
        if user is not None:
            entry = pwd.getpwnam(user)
            os.chown(self.data_dir, entry.pw_uid, entry.pw_gid)
            self.root.chmod(0o711)  # the server user must reach its data folder inside ours
        await self._run("initdb", [str(PG_BIN / "initdb"), "-D", str(self.data_dir), "-A", "trust", "-U", DB_USER,
                                   "-E", "UTF8", "--no-sync"], user)  # fmt: skip
        self.port = free_port()
        argv = [str(PG_BIN / "postgres"), "-D", str(self.data_dir), "-p", str(self.port)]
        for key, value in (
            ("listen_addresses", HOST),
            ("unix_socket_directories", str(self.data_dir)),
            ("max_connections", str(self.max_connections)),
            ("superuser_reserved_connections", "0"),
            ("fsync", "off"),
            ("full_page_writes", "off"),
        ):
            argv += ["-c", f"{key}={value}"]
        self.child = await spawn("postgres", argv, dict(os.environ), self.root, user=user)
        await self.child.wait_ready(self._accepts)
        await self._run("createdb", [*self.psql_argv(), "-d", "postgres", "-c", f"CREATE DATABASE {DATABASE}"], None)
        await self._run("schema", [*self.psql_argv(), "-d", DATABASE, "-f", str(SCHEMA)], None)
        await self.seed(records, hot_rows)

    async def seed(self, records: list[Record], hot_rows: int) -> None:
        """Load the records and the ``hot_rows`` counters (ids 0..K-1)."""
        appts, patients = records_csv(records)
        copy = "COPY {} FROM STDIN WITH (FORMAT csv)"
        db = [*self.psql_argv(), "-d", DATABASE]
        await self._run("seed", [*db, "-c", copy.format("appointments (ien, dfn, sta3n, clinic)")], None, appts)
        await self._run("seed", [*db, "-c", copy.format("patients (dfn, sta3n)")], None, patients)
        if hot_rows:
            counters = "".join(f"{i}\n" for i in range(hot_rows))
            await self._run("seed", [*db, "-c", copy.format("clinic_counters (id)")], None, counters)
        await self._run("analyze", [*db, "-c", "ANALYZE"], None)

    async def _accepts(self) -> bool:
        proc = await asyncio.create_subprocess_exec(
            str(PG_BIN / "pg_isready"), "-q", "-h", HOST, "-p", str(self.port), "-d", "postgres",
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        return await proc.wait() == 0

    async def _run(self, what: str, argv: list[str], user: str | None, stdin: str | None = None) -> None:
        """Run one setup command to its end; its output makes the error when it fails."""
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            cwd=str(self.root),
            user=user,
        )
        out, _ = await asyncio.wait_for(proc.communicate(stdin.encode() if stdin is not None else None), timeout=120)
        if proc.returncode != 0:
            tail = " | ".join(ln.strip() for ln in out.decode(errors="replace").splitlines()[-3:] if ln.strip())
            raise StackStartError(f"sandbox --stack rails: PostgreSQL {what} failed: {tail or 'no output'}")

    async def stop(self) -> None:
        """Fast shutdown (SIGINT: roll back open transactions, disconnect), then kill; idempotent."""
        child, self.child = self.child, None
        if child is not None and child.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                child.proc.send_signal(signal.SIGINT)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(child.proc.wait(), timeout=STOP_S)
            await child.stop()
        shutil.rmtree(self.data_dir, ignore_errors=True)


def cluster_records(seed: int, count: int) -> list[Record]:
    """The records the workload's test data addresses (same function, seed and count)."""
    return synthetic_records(seed, count)
