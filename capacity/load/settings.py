"""The load generator's settings as typed models, built once and passed as such.

``ConnectionSettings`` (how a process reaches the target) sits in ``GeneratorSettings`` (what every
generator process builds its executor from), which the caller builds once and hands to the driver.
``GeneratorSetup`` is one process's copy with what the driver learned before stage 1: the in-process
executor is built from it, and a distributed worker receives it as its ``cap_setup`` message,
serialised and validated by the model itself (no defaults restated on the worker side).
``WorkerSettings`` stays with the master: how many processes, where the master listens.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import Field

from capacity.plan.base import Strict
from capacity.plan.experiment import Workload
from capacity.plan.target import Auth
from capacity.plan.testdata import Record


class ConnectionSettings(Strict):
    """The target and how requests reach it, the same in every generator process."""

    base_url: str
    headers: dict[str, str] = Field(default_factory=dict, repr=False)
    """Live values (``${NAME}`` filled in): held in memory, never stored or printed."""
    timeout_s: float = 10.0
    verify_tls: bool = True


class GeneratorSettings(Strict):
    """What every generator process builds its executor from: the connection, the workload, and how
    arrivals run (a locustfile's tasks instead of the endpoints, the drop grace, Locust's own events)."""

    connection: ConnectionSettings
    workload: Workload
    locustfile: str | None = None
    """A locustfile to run instead of the endpoints (None: the workload's own, if any)."""
    source_file: str | None = None
    """The experiment file: test data, a relative locustfile and the token command are found beside it."""
    grace_s: float = 0.1
    """How late an arrival may start before it is dropped."""
    fire_locust_events: bool = False

    @classmethod
    def of(cls, base_url: str, workload: Workload, **kw: Any) -> GeneratorSettings:
        """From flat keywords (a ``ConnectionSettings`` field goes to the connection): tests and notebooks."""
        conn = {k: kw.pop(k) for k in list(kw) if k in ConnectionSettings.model_fields}
        return cls(connection=ConnectionSettings(base_url=base_url, **conn), workload=workload, **kw)

    @property
    def tasks_file(self) -> str | None:
        """The locustfile that runs: the one given, else the workload's."""
        return self.locustfile or self.workload.locustfile


class GeneratorSetup(Strict):
    """One generator process's setup: the settings, what the driver learned before stage 1, its stripe."""

    settings: GeneratorSettings
    auth_header: str | None = None
    """The run token's header (``[target.auth]``): the process keeps its requests carrying the token."""
    session_auth: Auth | None = None
    """``[target.auth] scope = "session"``: every session runs the command for a token of its own."""
    used: tuple[Record, ...] = ()
    """Test records the smoke preflight consumed: kept out of the run."""
    stripe: int = 0
    stripes: int = 1
    """This process's share of the test records: stripe ``stripe`` of ``stripes``."""

    def to_wire(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


@dataclass(frozen=True)
class WorkerSettings:
    """How many generator processes run the stages, and where their master listens (master side only)."""

    workers: int = 0
    """Local worker processes (0 with no remote ones: the stage engine runs in this process)."""
    expect_remote_workers: int = 0
    """``capacity worker`` processes elsewhere that will join the master."""
    master_bind: str = "127.0.0.1"
    master_port: int = 0
    worker_timeout_s: float = 30.0
    """How long the workers have to join and finish their setup."""
    allow_cleartext: bool = False
    """The user confirmed a master beyond loopback (``load.leases.check_master_bind``)."""

    @property
    def distributed(self) -> bool:
        return self.workers > 0 or self.expect_remote_workers > 0
