"""Which executor a workload gets: its locustfile's tasks, or its endpoints over a striped record set.

Used by the in-process driver and by each distributed worker, with the same arguments.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from locust.env import Environment

from capacity.core.errors import CapacityError
from capacity.load.auth import TokenHolder
from capacity.load.executors import EndpointExecutor, Executor
from capacity.load.locustfile import LocustfileExecutor
from capacity.load.pool import stripe
from capacity.load.session_auth import SessionTokens
from capacity.load.session_plan import Session, StepProgram
from capacity.load.settings import GeneratorSetup
from capacity.plan.testdata import load_records


def make_executor(setup: GeneratorSetup, env: Environment, *, auth: TokenHolder | None = None) -> Executor:
    """The executor for a workload; a locustfile takes precedence over the endpoint list.

    ``auth`` keeps the requests' headers carrying the run's token; ``setup.used``: records the smoke
    consumed; ``setup.session_auth`` (``scope = "session"``): each session runs the token command for its
    own token."""
    s = setup.settings
    if s.tasks_file:
        lf = LocustfileExecutor(
            s.connection,
            s.tasks_file,
            environment=env,
            source_file=s.source_file,
            fire_locust_events=s.fire_locust_events,
        )
        if auth is not None:
            auth.attach(lf.headers)
        return lf
    records = stripe(load_records(s.workload, s.source_file), setup.stripe, setup.stripes)
    session_auth = setup.session_auth
    ex = EndpointExecutor(
        s.connection,
        s.workload,
        records=records,
        pool_seed=s.workload.test_data.seed + setup.stripe,
        auth=auth,
        used=setup.used,
        session_tokens=SessionTokens(session_auth, experiment_dir(s.source_file)) if session_auth is not None else None,
    )
    if s.fire_locust_events:
        return LocustEventExecutor(ex, env)
    return ex


def experiment_dir(source_file: str | None) -> str | None:
    """The experiment file's folder, where its token command runs (None: the current directory)."""
    if source_file and Path(source_file).is_file():
        return str(Path(source_file).resolve().parent)
    return None


class LocustEventExecutor:
    """Fires Locust's ``request`` event per request so Locust's own stats and UI keep working."""

    def __init__(self, inner: EndpointExecutor, env: Environment) -> None:
        self.inner = inner
        self.names = inner.names
        self.weights = inner.weights
        self.sessions = inner.sessions
        self.session_tokens = inner.session_tokens
        self.fire = env.events.request.fire
        self.methods = inner.methods

    def prepare(self, max_inflight: int) -> None:
        self.inner.prepare(max_inflight)

    def new_state(self) -> Any:
        return None

    def execute(self, kind: int, state: Any) -> int | str:
        t0 = time.perf_counter()
        code = self.inner.execute(kind, state)
        self._fire(kind, t0, code)
        return code

    def execute_step(self, step: StepProgram, sess: Session, state: Any) -> int | str:
        t0 = time.perf_counter()
        code = self.inner.execute_step(step, sess, state)
        self._fire(step.kind, t0, code)
        return code

    def _fire(self, kind: int, t0: float, code: int | str) -> None:
        self.fire(
            request_type=self.methods[kind],
            name=self.names[kind],
            response_time=(time.perf_counter() - t0) * 1000.0,
            response_length=0,
            exception=None if isinstance(code, int) and code < 400 else CapacityError(str(code)),
            context=None,
        )

    def reset(self) -> None:
        self.inner.reset()

    def close(self) -> None:
        self.inner.close()
