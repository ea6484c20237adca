"""The smoke preflight: one request per endpoint with real test data before stage 1.

A target that answers 401 or 404 to every request would otherwise run a whole stage at 100% errors
and report it as the knee. Any answer outside 2xx (or the endpoint's ``expect_status``) stops the run
before any stage, naming the endpoint, the status and the start of the body (secrets redacted). A
record a consuming endpoint used here is spent: the caller keeps it out of the run.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from capacity.core.errors import CapacityError
from capacity.load.executors import CompiledEndpoint, error_kind, http_client
from capacity.load.session_plan import extract_into
from capacity.plan.secrets import redact
from capacity.plan.testdata import Record
from capacity.plan.workload import Endpoint, Workload

EXCERPT_CHARS = 200
AUTH_STATUSES = (401, 403)


@dataclass(frozen=True)
class SmokeAnswer:
    endpoint: Endpoint
    status: int | str
    """HTTP status, or the error text when no answer came."""
    body: str
    record: Record | None

    @property
    def ok(self) -> bool:
        return isinstance(self.status, int) and self.endpoint.accepts(self.status)

    def describe(self) -> str:
        ep = self.endpoint
        where = f"endpoint '{ep.name}' ({ep.method} {ep.path})"
        if isinstance(self.status, str):
            return f"{where} did not answer: {redact(self.status)}"
        wanted = "/".join(str(s) for s in ep.expect_status) if ep.expect_status else "2xx"
        what = f"{where} answered {self.status} (expected {wanted})"
        if self.status in AUTH_STATUSES:
            what += ": authentication refused, check [target.auth] and the headers"
        excerpt = redact(self.body[:EXCERPT_CHARS]).replace("\n", " ").strip()
        return f"{what}; body: {excerpt!r}" if excerpt else what


def smoke_records(workload: Workload, records: Sequence[Record]) -> list[Record | None]:
    """One record per endpoint: consuming ones each get their own (from the end), readers share the first.

    The endpoints of a consuming session flow share that flow's one record, as a session does."""
    out: list[Record | None] = [None] * len(workload.endpoints)
    if not records:
        return out
    index = {e.name: i for i, e in enumerate(workload.endpoints)}
    spent = 0

    def fresh(name: str) -> Record:
        nonlocal spent
        spent += 1
        if spent > len(records):
            raise CapacityError(f"smoke preflight: no unused test record left for endpoint '{name}'")
        return records[-spent]

    for f in workload.sessions:
        if workload.consumes_records(f):
            rec = fresh(f.name)
            for s in f.steps:
                if out[index[s.endpoint]] is None:
                    out[index[s.endpoint]] = rec
    for i, ep in enumerate(workload.endpoints):
        if out[i] is None:
            out[i] = fresh(ep.name) if ep.consumes else records[0]
    return out


def run_smoke(
    base_url: str,
    workload: Workload,
    *,
    headers: Mapping[str, str],
    records: Sequence[Record],
    timeout_s: float,
    verify_tls: bool,
) -> list[SmokeAnswer]:
    """One request per endpoint, sequentially on one connection."""
    prefix = urlsplit(base_url).path.rstrip("/")
    picks = smoke_records(workload, records)
    client = http_client(
        base_url, concurrency=1, network_timeout=timeout_s, connection_timeout=timeout_s, verify_tls=verify_tls
    )
    answers: list[SmokeAnswer] = []
    keys = tuple(sorted({k for f in workload.flows for st in f.steps for k in st.extract}))
    taken: dict[str, str] = {}
    """Values session steps extract from the smoke's answers, for the endpoints that use them."""
    try:
        for i in smoke_order(workload):
            ep, rec = workload.endpoints[i], picks[i]
            compiled = CompiledEndpoint(ep, prefix, dict(headers), bool(records), keys)
            values = {**(rec.as_dict() if rec is not None else {}), **taken}
            path = compiled.path.render(values)
            body = compiled.body.render(values).encode() if compiled.body is not None else None
            try:
                resp = client.request(ep.method, path, body=body, headers=compiled.headers)
                raw = resp.read()
                answers.append(SmokeAnswer(ep, int(resp.status_code), raw.decode("utf-8", "replace"), rec))
            except Exception as exc:
                answers.append(SmokeAnswer(ep, f"{error_kind(exc).removeprefix('error:')}: {exc}", "", rec))
                continue
            for st in (st for f in workload.flows for st in f.steps if st.endpoint == ep.name and st.extract):
                extract_into(taken, raw, tuple(st.extract_paths().items()))
    finally:
        client.close()
    return answers


def smoke_order(workload: Workload) -> list[int]:
    """Endpoint indices in the order session flows call them (so extracted values exist), then the rest."""
    index = {e.name: i for i, e in enumerate(workload.endpoints)}
    order = [index[s.endpoint] for f in workload.sessions for s in f.steps]
    order += range(len(workload.endpoints))
    return list(dict.fromkeys(order))


def check_smoke(answers: Sequence[SmokeAnswer]) -> None:
    """Raise one ``CapacityError`` line naming every endpoint whose answer was not a working one."""
    bad = [a for a in answers if not a.ok]
    if bad:
        raise CapacityError("smoke preflight failed before stage 1: " + "; ".join(a.describe() for a in bad))


def spent_records(answers: Sequence[SmokeAnswer]) -> list[Record]:
    """Records the smoke used on consuming endpoints (whatever the answer: the target may have acted on it)."""
    return [a.record for a in answers if a.endpoint.consumes and a.record is not None]
