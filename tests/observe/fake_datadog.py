"""A local stand-in for the Datadog API, speaking its wire format, for contract tests.

Shapes follow Datadog's API reference ("Query timeseries points", "Post an event", "Validate API
key") and recorded answers: v1 ``/api/v1/query`` takes epoch *seconds* and several
comma-separated queries, and answers ``series[]`` with ``pointlist`` of ``[ms, value|null]``,
``interval`` in seconds, ``tag_set``, ``unit`` and ``query_index``; errors are
``{"errors": [...]}``; 429s carry ``X-RateLimit-*`` headers.

Knobs: ingestion ``lag_s`` per metric prefix (points newer than now - lag are invisible, as with
late CloudWatch data), ``nulls`` (empty buckets come back as ``null``), and a script of faults
per path (status codes, ``timeout``, ``malformed``), and the API/app keys it accepts. Queries are
answered by the sandbox's evaluator (``capacity.sandbox.query_eval``: the one parser, units table and
default rollup), so contract tests and sandbox tests prove the same semantics; this file holds only
the faults, the lag and the auth. Serves 127.0.0.1 only, on a free port.
"""

from __future__ import annotations

import contextlib
import json
import math
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from capacity.observe.query_language import QueryError, parse_query, split_queries
from capacity.sandbox.metricstore import MetricStore
from capacity.sandbox.query_eval import View, query_response


@dataclass
class Fault:
    status: int = 500
    headers: dict[str, str] = field(default_factory=dict)
    body: Any = None
    action: str = ""  # "", "timeout", "malformed"
    delay_s: float = 0.0


class FakeDatadog:
    """In-memory series + an HTTP server; use as a context manager."""

    def __init__(self, *, api_key: str = "test-api-key", app_key: str = "test-app-key") -> None:
        self.api_key = api_key
        self.app_key = app_key
        self.store = MetricStore(max_points=10**7)
        self.units: dict[str, str] = {}
        """Per-metric unit edits (Datadog's metric metadata) over the integrations' own units."""
        self.lag_s: dict[str, float] = {}
        self.nulls = False
        self.faults: dict[str, list[Fault]] = defaultdict(list)
        self.requests: list[dict[str, Any]] = []
        self.events: list[dict[str, Any]] = []
        self.reject_metrics: set[str] = set()
        self.outage: tuple[float, float, int] | None = None
        """(from, until, status): every query in that wall-clock span answers ``status`` (an outage)."""
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -------------------------------------------------------------------------------- data
    def add(self, metric: str, tags: list[str], points: list[tuple[float, float]], unit: str | None = None) -> None:
        with self._lock:
            self.store.extend(metric, tags, points)
            if unit:
                self.units[metric] = unit

    def fail(self, path: str, *faults: Fault) -> None:
        with self._lock:
            self.faults[path].extend(faults)

    def calls(self, path: str = "/api/v1/query") -> int:
        return sum(1 for r in self.requests if r["path"] == path)

    # -------------------------------------------------------------------------------- serving
    @property
    def url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> FakeDatadog:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # keep test output clean
                pass

            def do_GET(self) -> None:
                fake._handle(self, "GET")

            def do_POST(self) -> None:
                fake._handle(self, "POST")

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._server is not None and self._thread is not None
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

    def _send(
        self,
        h: BaseHTTPRequestHandler,
        status: int,
        body: Any,
        headers: dict[str, str] | None = None,
        raw: bytes | None = None,
    ) -> None:
        data = raw if raw is not None else json.dumps(body).encode()
        h.send_response(status)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            h.send_header(k, v)
        h.end_headers()
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            h.wfile.write(data)

    def _handle(self, h: BaseHTTPRequestHandler, method: str) -> None:
        parts = urlsplit(h.path)
        params = {k: v[0] for k, v in parse_qs(parts.query).items()}
        length = int(h.headers.get("Content-Length") or 0)
        body_raw = h.rfile.read(length) if length else b""
        with self._lock:
            self.requests.append(
                {
                    "path": parts.path,
                    "method": method,
                    "params": params,
                    "headers": dict(h.headers),
                    "body": body_raw,
                    "at": time.time(),
                }
            )
            queue = self.faults.get(parts.path)
            fault = queue.pop(0) if queue else None
        out = self.outage
        if fault is None and out is not None and out[0] <= time.time() < out[1] and parts.path == "/api/v1/query":
            fault = Fault(status=out[2], body={"errors": ["Service Unavailable"]})
        if fault is not None:
            if fault.action == "timeout":
                time.sleep(fault.delay_s or 2.0)
            elif fault.action == "malformed":
                self._send(h, 200, None, raw=b'{"status": "ok", "series": [')
                return
            else:
                self._send(
                    h, fault.status, fault.body if fault.body is not None else {"errors": ["fault"]}, fault.headers
                )
                return
        api_ok = h.headers.get("DD-API-KEY") == self.api_key
        app_ok = h.headers.get("DD-APPLICATION-KEY") == self.app_key
        if parts.path == "/api/v1/validate" and method == "GET":
            if not api_ok:
                self._send(h, 403, {"errors": ["Forbidden"]})
            else:
                self._send(h, 200, {"valid": True})
        elif parts.path == "/api/v1/query" and method == "GET":
            if not (api_ok and app_ok):
                self._send(h, 403, {"errors": ["Forbidden"]})
                return
            status, answer = self.query(params)
            self._send(h, status, answer)
        elif parts.path == "/api/v1/events" and method == "POST":
            if not api_ok:
                self._send(h, 403, {"errors": ["Forbidden"]})
                return
            ev = json.loads(body_raw or b"{}")
            with self._lock:
                eid = 7_000_000_000_000_000_000 + len(self.events) + 1  # 64-bit ids: why id_str exists
                event = {
                    "id": eid,
                    "id_str": str(eid),
                    "title": ev.get("title"),
                    "text": ev.get("text"),
                    "tags": ev.get("tags", []),
                    "date_happened": int(time.time()),
                    "priority": None,
                    "url": f"https://app.datadoghq.com/event/event?id={eid}",
                }
                self.events.append(event)
            self._send(h, 202, {"status": "ok", "event": event})
        else:
            self._send(h, 404, {"errors": ["Not found"]})

    # -------------------------------------------------------------------------------- query
    def query(self, params: dict[str, str]) -> tuple[int, dict[str, Any]]:
        for k in ("from", "to", "query"):
            if k not in params:
                return 400, {"errors": [f"Missing required parameter: {k}"]}
        try:
            for q in (parse_query(t) for t in split_queries(params["query"])):
                if q.metric in self.reject_metrics:
                    why = f"Error parsing query: unable to parse {q.text}: Rule 'scope_expr' didn't match"
                    return 400, {"errors": [why]}
            view = View(nulls=self.nulls, units=dict(self.units), visible_until=self._visible_until)
            with self._lock:
                return 200, query_response(self.store, params["query"], int(params["from"]), int(params["to"]), view)
        except QueryError as exc:
            return 400, {"errors": [str(exc)]}

    def _visible_until(self, metric: str) -> float:
        lag = max((v for p, v in self.lag_s.items() if metric.startswith(p)), default=0.0)
        return time.time() - lag


# ------------------------------------------------------------------------------------ agent-shaped data
AGENT_ARN = "arn:aws:ecs:us-gov-west-1:123456789012:task/staging/"


@dataclass
class AgentShape:
    """A small cluster as the Datadog agent on Fargate reports it (the shared reference metadata).

    - ``ecs.fargate.*`` every 20 s per container, always tagged ``task_arn`` (the ECS Fargate check);
      ``mem.usage`` *includes* page cache (``mem.cache``, ``cache_share`` of usage); the app container
      has no hard limit unless ``container_limit`` (``mem.limit`` absent, as the agent sends none).
    - Puma and Redis check metrics every 15 s; at ``cardinality = "low"`` (the agent's default) they
      carry no ``task_arn``, so every task's series collapse into one group.
    - The job queue: Sidekiq Enterprise's ``sidekiq.enqueued`` (every 30 s) or, ``sidekiq = "oss"``,
      the Redis check's ``redis.key.length`` for ``key:queue:default``, with no point while it is 0.
    """

    tasks: int = 2
    cardinality: str = "low"
    cpu_pct: float = 40.0
    mem_usage_mib: float = 1000.0
    cache_share: float = 0.4
    container_limit: bool = False
    max_threads: float = 5.0
    pool_capacity: float = 3.0
    backlog: float = 0.0
    queue_depth: float = 10.0
    sidekiq: str = "enterprise"
    service: str = "cw-app"
    cluster: str = "staging"

    def task_ids(self) -> list[str]:
        return [f"{i:08x}" + "0" * 24 for i in range(1, self.tasks + 1)]


def _grid(t0: float, t1: float, every: int) -> list[int]:
    first = int(math.ceil(t0 / every) * every)
    return list(range(first, int(t1) + 1, every))


def populate_agent(fake: FakeDatadog, t0: float, t1: float, shape: AgentShape | None = None) -> AgentShape:
    """Points over ``[t0, t1]`` at the agent's intervals, tags and cardinality (see :class:`AgentShape`)."""
    s = shape or AgentShape()
    base = [f"ecs_cluster_name:{s.cluster}", f"ecs_service:{s.service}"]
    mib = 1024.0 * 1024.0
    for tid in s.task_ids():
        task = [*base, f"task_arn:{AGENT_ARN}{tid}"]
        app = [*task, "ecs_container_name:app"]
        fargate = _grid(t0, t1, 20)
        fake.add("ecs.fargate.cpu.percent", app, [(t, s.cpu_pct) for t in fargate], "percent")
        fake.add("ecs.fargate.mem.usage", app, [(t, s.mem_usage_mib * mib) for t in fargate], "byte")
        fake.add("ecs.fargate.mem.cache", app, [(t, s.cache_share * s.mem_usage_mib * mib) for t in fargate], "byte")
        if s.container_limit:
            fake.add("ecs.fargate.mem.limit", app, [(t, 2048 * mib) for t in fargate], "byte")
        check = task if s.cardinality == "orchestrator" else base
        puma = _grid(t0, t1, 15)
        fake.add("puma.pool_capacity", check, [(t, s.pool_capacity) for t in puma], "unit")
        fake.add("puma.max_threads", check, [(t, s.max_threads) for t in puma], "unit")
        fake.add("puma.backlog", check, [(t, s.backlog) for t in puma], "unit")
    sk = [f"ecs_cluster_name:{s.cluster}", "ecs_service:cw-sidekiq"]
    sk_task = [*sk, f"task_arn:{AGENT_ARN}{'f' * 32}", "ecs_container_name:sidekiq"]
    fake.add("ecs.fargate.cpu.percent", sk_task, [(t, 30.0) for t in _grid(t0, t1, 20)], "percent")
    if s.sidekiq == "oss":
        if s.queue_depth > 0:  # Redis deletes an empty list: no point at all for an empty queue
            key = [*sk, "key:queue:default", "key_type:list"]
            fake.add("redis.key.length", key, [(t, s.queue_depth) for t in _grid(t0, t1, 15)])
    else:
        fake.add("sidekiq.enqueued", sk, [(t, s.queue_depth) for t in _grid(t0, t1, 30)])
    return s
