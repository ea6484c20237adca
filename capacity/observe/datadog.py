"""Datadog metrics source on ``datadog-api-client``: batched v1 queries, polling, capped retries.

Why v1 ``GET /api/v1/query``: it takes several comma-separated queries in one ``query``
parameter and tags each answer series with ``query_index``, so a stage's whole query set is one
HTTP call per poll (query limits are per organisation). The client's own retry (``enable_retry``)
sleeps whatever ``X-RateLimit-Reset`` says, uncapped, and does not retry read timeouts, so it is
switched off (``retry_policy=False``) and retries happen here: capped waits for 429 (honouring
the reset header up to ``RetryPolicy.rate_limit_cap_s``), exponential backoff for 5xx and timeouts.
Responses are read raw (``preload_content=False``) so a malformed answer marks metrics missing
instead of raising from the client's model validation.

Keys live only in the client's configuration; no message or log line here ever contains them.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable
from typing import Any

import urllib3
from datadog_api_client import ApiClient, Configuration
from datadog_api_client.exceptions import ApiException, OpenApiException
from datadog_api_client.v1.api.authentication_api import AuthenticationApi
from datadog_api_client.v1.api.events_api import EventsApi
from datadog_api_client.v1.api.metrics_api import MetricsApi
from datadog_api_client.v1.model.event_alert_type import EventAlertType
from datadog_api_client.v1.model.event_create_request import EventCreateRequest

from capacity.core.errors import CapacityError, MetricsAuthError
from capacity.observe.aggregate import completeness, in_window, stage_aggregates, tidy
from capacity.observe.datadog_http import _AuthRefused, _detail, _header, _Rejected, _timed_out, _Unavailable
from capacity.observe.datadog_settings import DatadogEndpoint, PollSettings, QueryPlan, RetryPolicy
from capacity.observe.queries import STANDARD_NAMES, is_late
from capacity.observe.stage_metrics import StageMetrics, StageWindow
from capacity.observe.v1_answers import ParsedAnswer, parse_v1

log = logging.getLogger(__name__)

MAX_QUERY_CHARS = 3500
"""Batch queries into one ``query`` parameter up to this length (URLs must stay well under 8 KB)."""
PREFLIGHT_LOOKBACK_S = 3600
"""The preflight reads the last hour: a query with no series in it is reported (late CloudWatch data
lags up to 20 minutes, and an hour of 20-s rollups is still one small call)."""


class DatadogSource:
    """One Datadog site (or a Datadog-compatible endpoint) and one experiment's queries."""

    def __init__(
        self,
        endpoint: DatadogEndpoint,
        plan: QueryPlan,
        *,
        retry: RetryPolicy | None = None,
        poll: PollSettings | None = None,
        events: bool = False,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        """``events``: post Datadog events (run start, stages, the result); off, ``post_event`` does nothing."""
        self.host = endpoint.host.rstrip("/")
        self.key_names = endpoint.key_names
        self.queries = dict(plan.queries)
        self.rollup_s = max(1, int(plan.rollup_s))
        self.rollups = {n: max(1, int(plan.rollups.get(n, self.rollup_s))) for n in self.queries}
        """Name -> the rollup its query is read at (its metric's emission interval or more)."""
        self.divisors = {n: float(d) for n, d in plan.divisors.items() if d > 0}
        self.max_threads = plan.max_threads
        self.semantics = plan.semantics
        self._late = frozenset(n for n, q in self.queries.items() if is_late(q, tuple(plan.late_prefixes)))
        """Names of late (CloudWatch) queries: fixed for the source's life, so worked out once."""
        self.retry = retry or RetryPolicy()
        self.poll = poll or PollSettings()
        self.events = events
        self.clock = clock
        self.sleep = sleep
        self.calls = 0
        self._absent: set[str] = set()
        self._empty: list[str] = []
        self._rejected: dict[str, str] = {}
        conf = Configuration(
            host=self.host,
            api_key={"apiKeyAuth": endpoint.api_key, "appKeyAuth": endpoint.app_key},
            preload_content=False,
            request_timeout=(self.retry.connect_timeout_s, self.retry.read_timeout_s),
            enable_retry=False,
            retry_policy=False,
        )
        self._client = ApiClient(conf)
        self._metrics = MetricsApi(self._client)
        self._events = EventsApi(self._client)
        self._auth = AuthenticationApi(self._client)

    # ------------------------------------------------------------------------------ HTTP + retry
    def _call(self, fn: Callable[[], Any], what: str) -> Any:
        """Run one API call with capped retries; returns the decoded JSON body."""
        attempt = 0
        while True:
            self.calls += 1
            last: str
            exc_api: ApiException | None = None
            try:
                resp = fn()
                try:
                    raw = resp.data
                finally:
                    release = getattr(resp, "release_conn", None)
                    if callable(release):
                        release()
                try:
                    return json.loads(raw)
                except (ValueError, UnicodeDecodeError):
                    raise _Unavailable(f"{what}: answer is not JSON") from None
            except ApiException as exc:
                status = int(exc.status or 0)
                if status in (401, 403):
                    raise _AuthRefused(status) from None
                if status != 429 and status != 408 and status < 500 and status != 0:
                    raise _Rejected(status, _detail(exc.body)) from None
                exc_api = exc
                last = f"HTTP {status}" if status else "connection failed"
            except (urllib3.exceptions.HTTPError, OSError) as exc:
                last = "timed out" if _timed_out(exc) else f"connection failed ({type(exc).__name__})"
            except OpenApiException as exc:  # client-side validation: never expected, never fatal
                raise _Unavailable(f"{what}: client error {type(exc).__name__}") from None
            if attempt >= self.retry.max_retries:
                raise _Unavailable(f"{what}: {last} after {attempt + 1} attempts")
            limited = exc_api is not None and exc_api.status == 429
            reset = _header(exc_api.headers, "X-RateLimit-Reset") if limited and exc_api is not None else None
            wait = self.retry.wait_s(attempt, rate_limited=limited, reset=reset)
            log.info("datadog %s: %s, retry %d/%d in %.1f s", what, last, attempt + 1, self.retry.max_retries, wait)
            self.sleep(wait)
            attempt += 1

    def _auth_error(self, status: int, *, app_key: bool) -> MetricsAuthError:
        var = self.key_names[1] if app_key else self.key_names[0]
        hint = " (or it lacks the timeseries_query permission)" if app_key else ""
        return MetricsAuthError(f"Datadog at {self.host} refused {var}{hint}: HTTP {status}; check the key and DD_SITE")

    # ------------------------------------------------------------------------------ queries
    def _batches(self, names: list[str]) -> list[list[str]]:
        batches: list[list[str]] = []
        cur: list[str] = []
        size = 0
        for n in names:
            q = self.queries[n]
            if cur and size + len(q) + 1 > MAX_QUERY_CHARS:
                batches.append(cur)
                cur, size = [], 0
            cur.append(n)
            size += len(q) + 1
        if cur:
            batches.append(cur)
        return batches

    def _query(self, names: list[str], frm: int, to: int) -> ParsedAnswer:
        """One batched call for ``names``; a 400 on a batch is split to find the bad query."""
        text = ",".join(self.queries[n] for n in names)
        try:
            body = self._call(
                lambda: self._metrics.query_metrics(_from=frm, to=to, query=text),
                f"query ({len(names)} metrics)",
            )
        except _Rejected as exc:
            if len(names) > 1:
                merged = ParsedAnswer()
                for n in names:
                    _merge(merged, self._query([n], frm, to))
                return merged
            self._rejected[names[0]] = f"Datadog rejected the query ({exc.status}): {exc.detail}"
            return ParsedAnswer(failed={names[0]: self._rejected[names[0]]})
        return parse_v1(body, names, [self.queries[n] for n in names])

    def _query_all(self, frm: int, to: int, *, auth_fatal: bool = False, only: list[str] | None = None) -> ParsedAnswer:
        """Every query, batched; a refused key marks its batch failed, or raises ``_AuthRefused`` (with
        the HTTP status on it) when ``auth_fatal`` (the preflight: no point going on)."""
        merged = ParsedAnswer()
        names = [n for n in (only or self.queries) if n not in self._rejected]
        for n, why in self._rejected.items():
            merged.failed[n] = why
        for batch in self._batches(names):
            try:
                _merge(merged, self._query(batch, frm, to))
            except _AuthRefused as exc:
                if auth_fatal:
                    raise
                for n in batch:
                    merged.failed[n] = f"Datadog refused the keys (HTTP {exc.status})"
            except _Unavailable as exc:
                for n in batch:
                    merged.failed[n] = str(exc)
        return merged

    # ------------------------------------------------------------------------------ protocol
    def preflight(self) -> None:
        """A cheap authenticated check before stage 1: the API key, then the app key and the queries."""
        try:
            self._call(self._auth.validate, "validate")
        except _AuthRefused as exc:
            raise self._auth_error(exc.status, app_key=False) from None
        except _Rejected as exc:
            if exc.status != 404:  # a Datadog-compatible endpoint may lack /validate
                raise CapacityError(f"Datadog at {self.host}: validate failed ({exc})") from None
        except _Unavailable as exc:
            raise CapacityError(f"Datadog at {self.host} unavailable: {exc} (or run with --metrics none)") from None
        now = int(self.clock())
        try:
            answer = self._query_all(now - PREFLIGHT_LOOKBACK_S, now, auth_fatal=True)
        except _AuthRefused as exc:
            raise self._auth_error(exc.status, app_key=True) from None
        if self._rejected:
            name, why = next(iter(self._rejected.items()))
            raise CapacityError(f"metrics.queries.{name}: {why}")
        unavailable = [w for w in answer.failed.values()]
        if unavailable and len(answer.failed) == len(self.queries):
            raise CapacityError(f"Datadog at {self.host} unavailable: {unavailable[0]} (or run with --metrics none)")
        answered = {p.name for p in answer.points}
        self._empty = [n for n in self.queries if n not in answered and n not in answer.failed]
        log.info(
            "datadog preflight ok: %s, %d queries in %d call(s)",
            self.host,
            len(self.queries),
            len(self._batches(list(self.queries))),
        )

    def empty_queries(self, *, wait_s: float = 0.0) -> list[str]:
        """Queries that returned no series at all over the preflight's look-back (a misspelt metric, a
        wrong tag): their guards would be blind. Empty before :meth:`preflight`. With ``wait_s``, asks
        again every ``poll.interval_s`` until all answer or the time is up (a target that just started)."""
        deadline = self.clock() + wait_s
        while self._empty and self.clock() < deadline:
            self.sleep(min(self.poll.interval_s, max(0.0, deadline - self.clock())))
            now = int(self.clock())
            answer = self._query_all(now - PREFLIGHT_LOOKBACK_S, now, only=self._empty)
            answered = {p.name for p in answer.points}
            self._empty = [n for n in self._empty if n not in answered]
        return list(self._empty)

    def fetch_stage(self, window: StageWindow, *, wait: bool = True) -> StageMetrics:
        """Poll until every waited-for metric covers the window, or ``poll.deadline_s`` after its end.

        Late (CloudWatch ``aws.*``) metrics and metrics that had no data at all last time are
        fetched in the same calls but not waited for: the catch-up pass and ``capacity metrics
        backfill`` fill them later.
        """
        start_s, end_s = window.start_s, window.end_s
        margin = max(self.rollups.values(), default=self.rollup_s)
        frm = math.floor(start_s) - margin
        to = math.ceil(end_s) + margin
        deadline = end_s + self.poll.deadline_s
        calls_before = self.calls
        names = list(self.queries)
        seconds_to_complete: float | None = None
        while True:
            answer = self._query_all(frm, to)
            intervals = {n: answer.intervals.get(n, self.rollups[n]) for n in names}
            raw = tidy(
                [(p.name, p.group, p.t, p.value / self.divisors.get(p.name, 1.0)) for p in answer.points], window.stage
            )
            frame = in_window(raw, start_s, end_s, intervals).reset_index(drop=True)
            frame = self.semantics.fill(frame, start_s, end_s, intervals, window.stage)
            comp = completeness(frame, names, start_s, end_s, intervals)
            skip = self._late | self._absent | self.semantics.optional | set(answer.failed)
            waited = [n for n in names if n not in skip]
            pending = [n for n in waited if comp[n] < 1.0]
            if not pending:
                seconds_to_complete = max(0.0, self.clock() - end_s)
                break
            now = self.clock()
            if not wait or now >= deadline:
                break
            self.sleep(max(0.0, min(self.poll.interval_s, deadline - now)))
        return self._result(
            window,
            frame,
            comp,
            answer,
            calls=self.calls - calls_before,
            seconds_to_complete=seconds_to_complete,
            waited=wait,
        )

    def _result(
        self,
        window: StageWindow,
        frame: Any,
        comp: dict[str, float],
        answer: ParsedAnswer,
        *,
        calls: int,
        seconds_to_complete: float | None,
        waited: bool,
    ) -> StageMetrics:
        names = list(self.queries)
        intervals = {n: answer.intervals.get(n, self.rollups[n]) for n in names}
        have = set(frame["metric"].unique()) if not frame.empty else set()
        warnings = [*answer.warnings, *self.semantics.warnings(frame, self.queries, stage=window.stage)]
        missing: list[str] = []
        pending = [n for n in names if n in self._late and n not in have and n not in answer.failed]
        for n in names:
            if n in answer.failed:
                missing.append(n)
                warnings.append(f"{n}: {answer.failed[n]}")
            elif n not in have and n not in self.semantics.optional:
                missing.append(n)
                if n in self._late:
                    warnings.append(f"{n}: no data yet (late CloudWatch metric; catch-up pass fills it)")
                elif n not in self._absent:
                    warnings.append(f"{n}: no data in the stage window for {self.queries[n]!r}")
                if waited and have and n not in self._late:
                    # others arrived, this one did not: probably not reported at all; stop waiting for it
                    self._absent.add(n)
            else:
                self._absent.discard(n)
        level = logging.WARNING if window.stage >= 0 else logging.DEBUG  # stage -1: recovery probes
        for w in warnings:
            log.log(level, "stage %d metrics: %s", window.stage, w)
        extra = [n for n in names if n not in STANDARD_NAMES]
        limit = self.semantics.mem_limit_bytes
        aggregates = stage_aggregates(
            frame, intervals, extra_names=extra, max_threads=self.max_threads, mem_limit_bytes=limit
        )
        return StageMetrics(
            frame=frame,
            aggregates=aggregates,
            completeness=self.semantics.answered(comp, have),
            missing=missing,
            warnings=warnings,
            pending=pending,
            calls=calls,
            seconds_to_complete=seconds_to_complete,
        )

    def post_event(self, title: str, text: str, tags: list[str]) -> str | None:
        """Post a Datadog event (run start, a stage, the result); its ``id_str``, None when disabled."""
        if not self.events:
            return None
        body = EventCreateRequest(
            title=title[:100],
            text=text[:4000],
            tags=list(tags),
            alert_type=EventAlertType.INFO,
            source_type_name="capacity",
        )
        try:
            data = self._call(lambda: self._events.create_event(body=body), "event")
        except _AuthRefused as exc:
            raise self._auth_error(exc.status, app_key=False) from None
        except (_Rejected, _Unavailable) as exc:
            raise CapacityError(f"Datadog event not posted: {exc}") from None
        event = data.get("event") if isinstance(data, dict) else None
        if not isinstance(event, dict):
            return None
        if event.get("id_str"):
            return str(event["id_str"])
        return str(event["id"]) if event.get("id") is not None else None

    def close(self) -> None:
        self._client.close()


def _merge(into: ParsedAnswer, part: ParsedAnswer) -> None:
    into.points.extend(part.points)
    for k, v in part.intervals.items():
        into.intervals[k] = max(into.intervals.get(k, 0), v)
    into.failed.update(part.failed)
    into.warnings.extend(part.warnings)
