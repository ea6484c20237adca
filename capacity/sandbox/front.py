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

from capacity.sandbox.config import SandboxConfig
from capacity.sandbox.ddquery import QueryError, query_response
from capacity.sandbox.metricstore import MetricStore
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

    @web.middleware
    async def json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            return await handler(request)
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            return error(exc.status, exc.reason)

    arrivals = ArrivalWindow(1.0)

    @web.middleware
    async def overload_fault(request: web.Request, handler: Handler) -> web.StreamResponse:
        if cfg.error_above_rps is not None and request.path.startswith(WORKLOAD_PREFIXES):
            recent = arrivals.add(time.monotonic())
            if recent > cfg.error_above_rps:
                return error(
                    500,
                    f"injected fault: {recent} arrivals in the last second > error_above_rps {cfg.error_above_rps:g}",
                )
        return await handler(request)

    async def served(endpoint: str) -> int:
        return await backend.call_app(endpoint)

    def failed(status: int) -> web.Response:
        detail = "backlog full" if status == 503 else "simulated failure" if status == 500 else "app task gone"
        return error(status, detail)

    async def get_status(request: web.Request) -> web.Response:
        sta3n = request.match_info["sta3n"]
        dfn = _digits(request.query.get("patientDfn"))
        if dfn is None:
            return error(400, "query parameter patientDfn must be digits")
        status = await served("get_demographics_status")
        if status != 200:
            return failed(status)
        return web.json_response(_status_doc(dfn, sta3n, backend.data.status(dfn)))

    async def set_status(request: web.Request) -> web.Response:
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
        status = await served("set_demographics_status")
        if status != 200:
            return failed(status)
        return web.json_response(_status_doc(dfn, sta3n, backend.data.set_status(dfn, payload)))

    async def summary(request: web.Request) -> web.Response:
        ien = request.match_info["ien"]
        _, bad = await _json_body(request, required=False)
        if bad is not None:
            return bad
        status = await served("appointment_summary")
        if status != 200:
            return failed(status)
        if backend.data.appointment(ien) is None:
            return error(404, f"appointment {ien} not found")
        job_id = backend.enqueue_job()
        if job_id is None:
            return error(503, "job queue full")
        return web.json_response(
            {
                "data": {
                    "id": ien,
                    "type": "appointment_summary",
                    "attributes": {"jobId": str(job_id), "status": "queued"},
                }
            },
            status=202,
        )

    async def checkin(request: web.Request) -> web.Response:
        ien = request.match_info["ien"]
        _, bad = await _json_body(request, required=False)
        if bad is not None:
            return bad
        status = await served("appointment_checkin")
        if status != 200:
            return failed(status)
        rec = backend.data.appointment(ien)
        if rec is None:
            return error(404, f"appointment {ien} not found")
        if not backend.data.check_in(ien):
            return error(409, f"appointment {ien} is already checked in")
        return web.json_response(
            {
                "data": {
                    "id": ien,
                    "type": "appointment_checkin",
                    "attributes": {"status": "CHECKED_IN", "sta3n": rec.sta3n, "clinic": rec.clinic},
                }
            },
            status=201,
        )

    async def health(request: web.Request) -> web.Response:
        status = await backend.health()
        return web.json_response(
            {"status": "ok" if status == 200 else "degraded", "app_tasks": cfg.app_tasks}, status=status
        )

    # --------------------------------------------------------------------------- Datadog API
    def forbidden(request: web.Request, *, app_key_needed: bool = True) -> web.Response | None:
        """403 unless the configured keys came; like Datadog, ``/validate`` checks the API key only."""
        if cfg.require_keys is None:
            return None
        api, app_key = cfg.require_keys
        got_api = request.headers.get("DD-API-KEY", "")
        got_app = request.headers.get("DD-APPLICATION-KEY", "")
        if hmac.compare_digest(got_api.encode(), api.encode()) and (
            not app_key_needed or hmac.compare_digest(got_app.encode(), app_key.encode())
        ):
            return None
        return web.json_response({"errors": ["Forbidden"]}, status=403)

    async def dd_query(request: web.Request) -> web.Response:
        denied = forbidden(request)
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
            body = query_response(backend.store, q["query"], from_s, to_s)
        except QueryError as exc:
            return web.json_response({"errors": [str(exc)]}, status=400)
        return web.json_response(body)

    async def dd_validate(request: web.Request) -> web.Response:
        denied = forbidden(request, app_key_needed=False)
        return denied if denied is not None else web.json_response({"valid": True})

    events: list[int] = [0]

    async def dd_event(request: web.Request) -> web.Response:
        denied = forbidden(request)
        if denied is not None:
            return denied
        body, bad = await _json_body(request, required=True)
        if bad is not None or body is None:
            return web.json_response({"errors": ["Invalid event body"]}, status=400)
        events[0] += 1
        event = {
            "id": events[0],
            "title": str(body.get("title", "")),
            "text": str(body.get("text", "")),
            "tags": list(body.get("tags") or []),
            "date_happened": int(time.time()),
            "url": "",
        }
        return web.json_response({"status": "ok", "event": event}, status=202)

    app = web.Application(middlewares=[json_errors, overload_fault], client_max_size=1024 * 1024)
    vista = "/api/v1/vista-sites/{sta3n:\\d+}"
    app.router.add_get("/health", health)
    app.router.add_get(f"{vista}/patient_demographics_status", get_status)
    app.router.add_post(f"{vista}/patient_demographics_status", set_status)
    for prefix in ("", vista):
        app.router.add_post(prefix + "/appointments/{ien}/summary", summary)
        app.router.add_post(prefix + "/appointments/{ien}/checkins", checkin)
    app.router.add_get("/api/v1/query", dd_query)
    app.router.add_get("/api/v1/validate", dd_validate)
    app.router.add_post("/api/v1/events", dd_event)
    return app
