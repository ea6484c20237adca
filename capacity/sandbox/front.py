"""The HTTP side of the sandbox: Clinician Workflow's routes plus a Datadog-compatible query API.

The front plays the load balancer (ALB): it parses each request, rejects malformed ones at once
(400/422, no service time), hands the rest round-robin to an app task for their service time, and
applies the outcome to the shared data afterwards (404 unknown appointment, 409 second check-in,
job enqueued for a summary). With the fault option ``error_above_rps``, every workload request that
arrives while more than that many arrived over the last second is answered 500 at once, whatever the
app tasks could serve (an injected failure above a known rate). Datadog routes (``/api/v1/query``, ``/api/v1/validate``,
``/api/v1/events``) need ``DD-API-KEY``/``DD-APPLICATION-KEY`` only when keys were configured.
"""

from __future__ import annotations

import hmac
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from aiohttp import web

from capacity.plan.testdata import Record
from capacity.sandbox.config import SandboxConfig
from capacity.sandbox.metricstore import MetricStore
from capacity.sandbox.query_eval import QueryError, query_response
from capacity.sandbox.state import ArrivalWindow, ClinicData

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_TITLES = {
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    422: "Unprocessable Entity",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
}


class Backend(Protocol):
    """What the front needs from the supervisor."""

    store: MetricStore
    data: ClinicData

    async def call_app(self, endpoint: str) -> int: ...
    async def health(self) -> int: ...
    def enqueue_job(self) -> int | None: ...


def error(status: int, detail: str) -> web.Response:
    """A JSON:API-style error body, as Rails APIs answer."""
    body = {"errors": [{"status": str(status), "title": _TITLES.get(status, "Error"), "detail": detail}]}
    return web.json_response(body, status=status)


WORKLOAD_PREFIXES = ("/api/v1/vista-sites/", "/appointments/")
_VISTA = "/api/v1/vista-sites/{sta3n:\\d+}"
WORKLOAD_ROUTES: tuple[tuple[str, str, str], ...] = (
    ("GET", f"{_VISTA}/patient_demographics_status", "get_status"),
    ("POST", f"{_VISTA}/patient_demographics_status", "set_status"),
    *(
        route
        for prefix in ("", _VISTA)
        for route in (
            ("POST", prefix + "/appointments/{ien}/summary", "summary"),
            ("POST", prefix + "/appointments/{ien}/checkins", "checkin"),
        )
    ),
)
"""(method, path, handler name) of every workload route: the stand-in serves them, the Rails front forwards them."""
"""Paths the fault option counts and fails; ``/health`` and the Datadog API are never affected."""


def _digits(value: Any) -> str | None:
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return str(value)
    if isinstance(value, str) and value.isdigit() and len(value) <= 20:
        return value
    return None


async def _json_body(request: web.Request, *, required: bool) -> tuple[dict[str, Any] | None, web.Response | None]:
    raw = await request.read()
    if not raw.strip():
        if required:
            return None, error(400, "request body must be a JSON object")
        return {}, None
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return None, error(400, "request body is not valid JSON")
    if not isinstance(body, dict):
        return None, error(400, "request body must be a JSON object")
    return body, None


def _status_doc(dfn: str, sta3n: str, st: dict[str, Any]) -> dict[str, Any]:
    return {
        "data": {
            "id": dfn,
            "type": "patient_demographics_status",
            "attributes": {"patientDfn": dfn, "sta3n": sta3n, **st},
        }
    }


def build_app(cfg: SandboxConfig, backend: Backend) -> web.Application:
    """The aiohttp application serving the workload routes, ``/health`` and the Datadog API."""
    fault = _OverloadFault(cfg.error_above_rps)
    app = web.Application(middlewares=[_json_errors, fault.middleware], client_max_size=1024 * 1024)
    routes = _WorkloadRoutes(cfg, backend)
    app.router.add_get("/health", routes.health)
    app.router.add_get("/sandbox/journeys", routes.journeys)
    add_workload_routes(app, lambda name: getattr(routes, name))
    add_datadog_routes(app, cfg, backend)
    return app


def add_workload_routes(app: web.Application, handler: Callable[[str], Handler]) -> None:
    """Clinician Workflow's routes (``WORKLOAD_ROUTES``), each served by ``handler(name)``."""
    for method, path, name in WORKLOAD_ROUTES:
        add = app.router.add_get if method == "GET" else app.router.add_post
        add(path, handler(name))


def add_datadog_routes(app: web.Application, cfg: SandboxConfig, backend: Backend) -> None:
    """The Datadog API subset (query, validate, events) over ``backend.store``; every front serves it."""
    datadog = _DatadogRoutes(cfg, backend)
    app.router.add_get("/api/v1/query", datadog.query)
    app.router.add_get("/api/v1/validate", datadog.validate)
    app.router.add_post("/api/v1/events", datadog.event)


@web.middleware
async def _json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """aiohttp's own 4xx/5xx (unknown route, wrong method, body too large) in the JSON:API shape."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return error(exc.status, exc.reason)


class _OverloadFault:
    """The ``error_above_rps`` fault: workload requests beyond that rate over the last second get 500."""

    def __init__(self, error_above_rps: float | None) -> None:
        self.limit = error_above_rps
        self.arrivals = ArrivalWindow(1.0)

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if self.limit is not None and request.path.startswith(WORKLOAD_PREFIXES):
            recent = self.arrivals.add(time.monotonic())
            if recent > self.limit:
                return error(
                    500, f"injected fault: {recent} arrivals in the last second > error_above_rps {self.limit:g}"
                )
        return await handler(request)


def _failed(status: int) -> web.Response:
    detail = "backlog full" if status == 503 else "simulated failure" if status == 500 else "app task gone"
    return error(status, detail)


class _WorkloadRoutes:
    """Clinician Workflow's routes: validate, spend an app task's service time, then apply the outcome."""

    def __init__(self, cfg: SandboxConfig, backend: Backend) -> None:
        self.cfg = cfg
        self.backend = backend

    async def get_status(self, request: web.Request) -> web.Response:
        sta3n = request.match_info["sta3n"]
        dfn = _digits(request.query.get("patientDfn"))
        if dfn is None:
            return error(400, "query parameter patientDfn must be digits")
        status = await self.backend.call_app("get_demographics_status")
        if status != 200:
            return _failed(status)
        self.backend.data.journeys.status_read(dfn)
        return web.json_response(_status_doc(dfn, sta3n, self.backend.data.status(dfn)))

    async def set_status(self, request: web.Request) -> web.Response:
        sta3n = request.match_info["sta3n"]
        body, bad = await _json_body(request, required=True)
        if bad is not None or body is None:
            return bad or error(400, "request body must be a JSON object")
        dfn = _digits(body.get("patientDfn"))
        if dfn is None:
            return error(422, "patientDfn must be a string of digits")
        payload = body.get("demographicsConfirmationPayload", {})
        if not isinstance(payload, dict):
            return error(422, "demographicsConfirmationPayload must be a JSON object")
        status = await self.backend.call_app("set_demographics_status")
        if status != 200:
            return _failed(status)
        return web.json_response(_status_doc(dfn, sta3n, self.backend.data.set_status(dfn, payload)))

    async def _served(self, request: web.Request, endpoint: str) -> tuple[Record, str | None] | web.Response:
        """The appointment a summary or check-in names, once an app task served ``endpoint``, with the body's
        ``patientDfn``; or the error answer (bad body, failed task, unknown appointment)."""
        ien = request.match_info["ien"]
        body, bad = await _json_body(request, required=False)
        if bad is not None:
            return bad
        status = await self.backend.call_app(endpoint)
        if status != 200:
            return _failed(status)
        rec = self.backend.data.appointment(ien)
        if rec is None:
            return error(404, f"appointment {ien} not found")
        return rec, _digits((body or {}).get("patientDfn"))

    async def summary(self, request: web.Request) -> web.Response:
        served = await self._served(request, "appointment_summary")
        if isinstance(served, web.Response):
            return served
        rec, dfn = served
        job_id = self.backend.enqueue_job()
        if job_id is None:
            return error(503, "job queue full")
        self.backend.data.journeys.call(rec, "summary", dfn)
        attributes = {"jobId": str(job_id), "status": "queued"}
        return web.json_response(
            {"data": {"id": rec.ien, "type": "appointment_summary", "attributes": attributes}}, status=202
        )

    async def checkin(self, request: web.Request) -> web.Response:
        served = await self._served(request, "appointment_checkin")
        if isinstance(served, web.Response):
            return served
        rec, dfn = served
        if not self.backend.data.check_in(rec.ien):
            return error(409, f"appointment {rec.ien} is already checked in")
        self.backend.data.journeys.call(rec, "checkin", dfn)
        attributes = {"status": "CHECKED_IN", "sta3n": rec.sta3n, "clinic": rec.clinic}
        return web.json_response(
            {"data": {"id": rec.ien, "type": "appointment_checkin", "attributes": attributes}}, status=201
        )

    async def journeys(self, request: web.Request) -> web.Response:
        """Which calls the appointments saw: check-ins, how many were whole sessions, the broken ones."""
        return web.json_response(self.backend.data.journeys.report())

    async def health(self, request: web.Request) -> web.Response:
        status = await self.backend.health()
        return web.json_response(
            {"status": "ok" if status == 200 else "degraded", "app_tasks": self.cfg.app_tasks}, status=status
        )


class _DatadogRoutes:
    """The Datadog API subset the search uses: metric queries, key validation, events."""

    def __init__(self, cfg: SandboxConfig, backend: Backend) -> None:
        self.require_keys = cfg.require_keys
        self.store = backend.store
        self.events = 0

    def forbidden(self, request: web.Request, *, app_key_needed: bool = True) -> web.Response | None:
        """403 unless the configured keys came; like Datadog, ``/validate`` checks the API key only."""
        if self.require_keys is None:
            return None
        api, app_key = self.require_keys
        got_api = request.headers.get("DD-API-KEY", "")
        got_app = request.headers.get("DD-APPLICATION-KEY", "")
        if hmac.compare_digest(got_api.encode(), api.encode()) and (
            not app_key_needed or hmac.compare_digest(got_app.encode(), app_key.encode())
        ):
            return None
        return web.json_response({"errors": ["Forbidden"]}, status=403)

    async def query(self, request: web.Request) -> web.Response:
        denied = self.forbidden(request)
        if denied is not None:
            return denied
        q = request.query
        missing = [k for k in ("from", "to", "query") if not q.get(k)]
        if missing:
            return web.json_response({"errors": [f"Missing required parameter: {missing[0]}"]}, status=400)
        try:
            from_s, to_s = int(float(q["from"])), int(float(q["to"]))
        except ValueError:
            return web.json_response({"errors": ["'from' and 'to' must be integers (seconds)"]}, status=400)
        try:
            body = query_response(self.store, q["query"], from_s, to_s)
        except QueryError as exc:
            return web.json_response({"errors": [str(exc)]}, status=400)
        return web.json_response(body)

    async def validate(self, request: web.Request) -> web.Response:
        denied = self.forbidden(request, app_key_needed=False)
        return denied if denied is not None else web.json_response({"valid": True})

    async def event(self, request: web.Request) -> web.Response:
        denied = self.forbidden(request)
        if denied is not None:
            return denied
        body, bad = await _json_body(request, required=True)
        if bad is not None or body is None:
            return web.json_response({"errors": ["Invalid event body"]}, status=400)
        self.events += 1
        event = {
            "id": self.events,
            "title": str(body.get("title", "")),
            "text": str(body.get("text", "")),
            "tags": list(body.get("tags") or []),
            "date_happened": int(time.time()),
            "url": "",
        }
        return web.json_response({"status": "ok", "event": event}, status=202)
