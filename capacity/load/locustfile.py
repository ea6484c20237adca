"""Run an existing locustfile's tasks as open-model arrivals: one task per arrival.

The file's User classes and task weights decide *what* an arrival does; the schedule decides
*when*. Each in-flight slot owns one instance per User class (``on_start`` runs once per instance),
whose ``client`` is a FastHttpSession on a shared connection pool. The session's request event is
a per-instance recorder, so a task's outcome (first failure, else last status) is known without
any shared state; it can also forward to Locust's own ``request`` event.
"""

from __future__ import annotations

import importlib.util
import inspect
import sys
from collections import Counter
from pathlib import Path
from types import ModuleType
from typing import Any

import locust
from geventhttpclient.client import HTTPClientPool
from locust.contrib.fasthttp import FastHttpSession, LocustBadStatusCode
from locust.exception import StopUser

from capacity.core.errors import CapacityError
from capacity.load.executors import PooledExecutor, error_kind, tls_options
from capacity.load.settings import ConnectionSettings


def resolve_locustfile(path: str, source_file: str | None = None) -> Path:
    p = Path(path)
    if not p.is_absolute() and source_file:
        p = Path(source_file).resolve().parent / p
    if not p.is_file():
        raise CapacityError(f"locustfile not found: {p}")
    return p


def load_user_classes(path: Path) -> list[type[locust.User]]:
    """The non-abstract User classes with tasks in ``path``; import errors name the file."""
    name = f"capacity_locustfile_{abs(hash(str(path)))}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise CapacityError(f"locustfile {path}: cannot be imported")
    module: ModuleType = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        raise CapacityError(f"locustfile {path}: import failed: {type(exc).__name__}: {exc}") from None
    classes = [
        obj
        for obj in vars(module).values()
        if inspect.isclass(obj) and issubclass(obj, locust.User) and not obj.abstract and obj.tasks
    ]
    if not classes:
        raise CapacityError(f"locustfile {path}: no User class with tasks")
    for cls in classes:
        for t in cls.tasks:
            if inspect.isclass(t):
                raise CapacityError(
                    f"locustfile {path}: {cls.__name__} uses a TaskSet ({t.__name__}); "
                    "only task methods/functions can run one per arrival"
                )
    return classes


class _Recorder:
    """Stands in for ``events.request`` on one session: remembers the current task's outcome."""

    __slots__ = ("failed", "forward", "last")

    def __init__(self, forward: Any | None) -> None:
        self.failed: int | str | None = None
        self.last = 0
        self.forward = forward

    def fire(self, **kw: Any) -> None:
        exc = kw.get("exception")
        resp = kw.get("response")
        code = int(getattr(resp, "status_code", 0) or 0)
        if exc is not None and self.failed is None:
            self.failed = code if isinstance(exc, LocustBadStatusCode) and code else error_kind(exc)
        self.last = code
        if self.forward is not None:
            self.forward.fire(**kw)


class _Slot:
    __slots__ = ("users",)

    def __init__(self) -> None:
        self.users: dict[type[locust.User], tuple[locust.User, _Recorder]] = {}


class LocustfileExecutor(PooledExecutor):
    """Arrivals pick (User class, task) by the file's weights and run that one task."""

    def __init__(
        self,
        connection: ConnectionSettings,
        path: str,
        *,
        environment: locust.env.Environment,
        source_file: str | None = None,
        fire_locust_events: bool = False,
    ) -> None:
        self.path = resolve_locustfile(path, source_file)
        self.connection = connection
        self.verify_tls = connection.verify_tls
        self.base_url = connection.base_url
        self.env = environment
        self.headers = dict(connection.headers)
        self.forward = environment.events.request if fire_locust_events else None
        classes = load_user_classes(self.path)
        total_w = sum(max(float(getattr(c, "weight", 1) or 1), 0.0) for c in classes) or 1.0
        self.kinds: list[tuple[type[locust.User], Any]] = []
        self.names: list[str] = []
        self.weights: list[float] = []
        for cls in classes:
            cw = max(float(getattr(cls, "weight", 1) or 1), 0.0) / total_w
            counts = Counter(cls.tasks)
            n = sum(counts.values())
            for fn, cnt in counts.items():
                self.kinds.append((cls, fn))
                self.names.append(f"{cls.__name__}.{getattr(fn, '__name__', str(fn))}")
                self.weights.append(cw * cnt / n)

    def _open_pool(self, concurrency: int) -> HTTPClientPool:
        timeout = self.connection.timeout_s
        return HTTPClientPool(
            concurrency=concurrency,
            network_timeout=timeout,
            connection_timeout=timeout,
            **tls_options(self.verify_tls),
        )

    def new_state(self) -> Any:
        return _Slot()

    def _user(self, slot: _Slot, cls: type[locust.User]) -> tuple[locust.User, _Recorder]:
        cls.host = self.base_url
        user = cls.__new__(cls)
        locust.User.__init__(user, self.env)  # skip HttpUser's own session: ours replaces it
        rec = _Recorder(self.forward)
        user.client = FastHttpSession(  # type: ignore[attr-defined]
            base_url=self.base_url,
            request_event=rec,
            user=user,
            **tls_options(self.verify_tls),
            client_pool=self._http,
            headers=self.headers or None,
        )
        slot.users[cls] = (user, rec)
        user.on_start()
        return user, rec

    def execute(self, kind: int, state: Any) -> int | str:
        cls, fn = self.kinds[kind]
        try:
            pair = state.users.get(cls)
            user, rec = pair if pair is not None else self._user(state, cls)
            rec.failed = None
            rec.last = 0
            fn(user)
        except StopUser:
            state.users.pop(cls, None)
            return "stop-user"
        except Exception as exc:
            return error_kind(exc)
        return rec.failed if rec.failed is not None else rec.last
