"""What one arrival does: one endpoint request (from the workload) or one locustfile task.

Executors do everything that can be done once per run up front (templates checked, paths and bodies
rendered for the shared records, headers built) so ``execute`` is a list step, one HTTP request and
a status check. ``execute`` never raises: it returns the HTTP status or an error kind string.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol
from urllib.parse import urlsplit

from geventhttpclient import HTTPClient
from locust.contrib.fasthttp import insecure_ssl_context_factory

from capacity.core.errors import CapacityError
from capacity.load.auth import TokenHolder
from capacity.load.pool import RecordPool, RecordsExhausted
from capacity.load.session_auth import SessionTokens
from capacity.load.session_plan import EXTRACT_FAILED, Session, StepProgram, extract_into, session_plan
from capacity.load.settings import ConnectionSettings
from capacity.load.templates import Template, compile_template
from capacity.plan.experiment import Endpoint, Workload
from capacity.plan.testdata import FIELDS, Record

EXHAUSTED = "test-data exhausted"
"""Error kind of an arrival whose consuming endpoint found no unused test record (nothing sent).

The stage engine counts these outcomes; executors only return them."""

PRERENDER_LIMIT = 20_000


class Executor(Protocol):
    names: list[str]
    weights: list[float]

    def prepare(self, max_inflight: int) -> None: ...
    def new_state(self) -> Any: ...
    def execute(self, kind: int, state: Any) -> int | str: ...
    def reset(self) -> None: ...
    def close(self) -> None: ...


def tls_options(verify_tls: bool) -> dict[str, Any]:
    """geventhttpclient arguments; ``verify_tls=False`` skips the certificate and hostname checks.

    geventhttpclient's own ``insecure`` only skips the hostname check, so an unverified context comes
    from Locust's ``insecure_ssl_context_factory`` (what FastHttpUser uses).
    """
    return {"insecure": not verify_tls, "ssl_context_factory": None if verify_tls else insecure_ssl_context_factory}


def http_client(
    base_url: str, *, concurrency: int, network_timeout: float, connection_timeout: float, verify_tls: bool
) -> HTTPClient:
    """A connection pool to the target, its certificate checked unless ``verify_tls`` is false."""
    return HTTPClient.from_url(
        base_url,
        concurrency=concurrency,
        network_timeout=network_timeout,
        connection_timeout=connection_timeout,
        **tls_options(verify_tls),
    )


def error_kind(exc: BaseException) -> str:
    return "error:" + type(exc).__name__


class CompiledEndpoint:
    __slots__ = ("body", "consumes", "cursor", "headers", "method", "name", "path", "rendered")

    def __init__(
        self,
        ep: Endpoint,
        prefix: str,
        base_headers: dict[str, str],
        has_records: bool,
        extracted: tuple[str, ...] = (),
    ) -> None:
        where = f"endpoint '{ep.name}'"
        allowed = (*(FIELDS if has_records else ()), *extracted)
        self.name = ep.name
        self.method = ep.method
        self.consumes = ep.consumes
        self.path: Template = compile_template(prefix + ep.path, allowed=allowed, where=f"{where} path")
        self.body: Template | None = (
            compile_template(ep.body, allowed=allowed, where=f"{where} body") if ep.body is not None else None
        )
        headers = dict(base_headers)
        if ep.body is not None and not any(k.lower() == "content-type" for k in headers):
            headers["Content-Type"] = "application/json"
        self.headers = headers
        self.rendered: list[tuple[str, bytes | None]] = []
        self.cursor = 0

    def render(self, rec: Record | None) -> tuple[str, bytes | None]:
        values = rec.as_dict() if rec is not None else {}
        body = self.body.render(values).encode() if self.body is not None else None
        return self.path.render(values), body

    def prerender(self, records: Sequence[Record]) -> None:
        fields = {*self.path.fields, *(self.body.fields if self.body is not None else ())}
        if fields - set(FIELDS):  # uses a value from an earlier answer: rendered per session call only
            self.rendered = []
            return
        constant = self.path.is_constant and (self.body is None or self.body.is_constant)
        if constant or not records:
            self.rendered = [self.render(None)]
        else:
            self.rendered = [self.render(r) for r in records[:PRERENDER_LIMIT]]


class PooledExecutor:
    """An executor's connection pool, sized to the stage's in-flight bound: rebuilt larger when a stage
    needs more, and rebuilt as it was after a stage killed requests mid-flight (``reset``)."""

    _http: Any = None
    _concurrency = 0

    def _open_pool(self, concurrency: int) -> Any:
        raise NotImplementedError

    def prepare(self, max_inflight: int) -> None:
        if self._http is None or max_inflight > self._concurrency:
            self.close()
            self._concurrency = max_inflight
            self._http = self._open_pool(max_inflight)

    def reset(self) -> None:
        n = self._concurrency
        self.close()
        if n:
            self.prepare(n)

    def close(self) -> None:
        if self._http is not None:
            self._http.close()
            self._http = None


class EndpointExecutor(PooledExecutor):
    """Requests from ``[[workload.endpoints]]`` over one geventhttpclient connection pool."""

    def __init__(
        self,
        connection: ConnectionSettings,
        workload: Workload,
        *,
        records: Sequence[Record],
        pool_seed: int = 0,
        auth: TokenHolder | None = None,
        used: Sequence[Record] = (),
        session_tokens: SessionTokens | None = None,
    ) -> None:
        """``auth`` keeps every endpoint's headers carrying the run's token; ``used`` are records the
        smoke preflight already consumed (never handed to a consuming endpoint again);
        ``session_tokens`` gives each session a token of its own (``[target.auth] scope = "session"``)."""
        if not workload.endpoints:
            raise CapacityError("workload has no endpoints to request")
        self.connection = connection
        prefix = urlsplit(connection.base_url).path.rstrip("/")
        recs = list(records)
        if used:
            spent = set(used)
            recs = [r for r in recs if r not in spent]
        extracted = tuple(sorted({k for f in workload.flows for st in f.steps for k in st.extract}))
        self._eps = [
            CompiledEndpoint(ep, prefix, dict(connection.headers), bool(recs), extracted) for ep in workload.endpoints
        ]
        self.pool: RecordPool | None = RecordPool(recs, seed=pool_seed) if recs else None
        shared = [self.pool.shared() for _ in range(min(len(recs), PRERENDER_LIMIT))] if self.pool else []
        for ep in self._eps:
            ep.prerender(shared)
            if auth is not None:
                auth.attach(ep.headers)
        self._auth = auth
        self.session_tokens = session_tokens
        self.names = [e.name for e in workload.endpoints]
        self.methods = [e.method for e in workload.endpoints]
        self.sessions = session_plan(workload)
        """Flows run as sessions (None: every arrival is one request of ``weights``' mix)."""
        self.weights = (
            list(self.sessions.weights) if self.sessions is not None else [e.share_weight for e in workload.endpoints]
        )

    def _open_pool(self, concurrency: int) -> HTTPClient:
        c = self.connection
        return http_client(
            c.base_url,
            concurrency=concurrency,
            network_timeout=c.timeout_s,
            connection_timeout=c.timeout_s,
            verify_tls=c.verify_tls,
        )

    def new_state(self) -> Any:
        return None

    def execute(self, kind: int, state: Any) -> int | str:
        ep = self._eps[kind]
        if ep.consumes and self.pool is not None:
            try:
                rec = self.pool.take()
            except RecordsExhausted:
                return EXHAUSTED
            path, body = ep.render(rec)
        else:
            rendered = ep.rendered
            i = ep.cursor
            ep.cursor = i + 1 if i + 1 < len(rendered) else 0
            path, body = rendered[i]
        client = self._http
        assert client is not None
        auth = self._auth
        generation = auth.generation if auth is not None else 0
        try:
            resp = client.request(ep.method, path, body=body, headers=ep.headers)
            resp.read()
            code = int(resp.status_code)
            if auth is not None and auth.retry_after_refusal(code, generation):  # once, with the fresh token
                resp = client.request(ep.method, path, body=body, headers=ep.headers)
                resp.read()
                code = int(resp.status_code)
        except Exception as exc:
            return error_kind(exc)
        return code

    def execute_step(self, step: StepProgram, sess: Session, state: Any) -> int | str:
        """One call of a session's step: its record's values (taken at its first call) and what earlier
        answers gave; the answer's ``extract`` values are kept for later steps."""
        ep = self._eps[step.kind]
        values = sess.values
        if values is None:
            pool = self.pool
            if pool is None:
                values = {}
            else:
                try:
                    rec = pool.take() if self.sessions.flows[sess.flow].consumes else pool.shared()  # type: ignore[union-attr]
                except RecordsExhausted:
                    return EXHAUSTED
                values = rec.as_dict()
            sess.values = values
        path = ep.path.render(values)
        body = ep.body.render(values).encode() if ep.body is not None else None
        client = self._http
        assert client is not None
        auth = self._auth
        generation = auth.generation if auth is not None else 0
        try:
            headers = ep.headers if sess.headers is None else {**ep.headers, **sess.headers}
            resp = client.request(ep.method, path, body=body, headers=headers)
            data = resp.read()
            code = int(resp.status_code)
            # the run's token (not a session's own): a refusal right after its expiry is re-sent once
            if sess.headers is None and auth is not None and auth.retry_after_refusal(code, generation):
                resp = client.request(ep.method, path, body=body, headers=ep.headers)
                data = resp.read()
                code = int(resp.status_code)
        except Exception as exc:
            return error_kind(exc)
        if step.extract and code < 400 and not extract_into(values, data, step.extract):
            return EXTRACT_FAILED
        return code
