"""Flows as sessions (issue 24) on the stage engine, with a fake executor: no HTTP, exact bookkeeping.

Each session's calls must carry its one record in flow order, the mix of session starts and
independent requests must give every endpoint its planned share, a failing step ends its session
there, and a session still running at the stage's end is unfinished, never lost.
"""

from __future__ import annotations

import random
import time
from collections import Counter, defaultdict
from typing import Any

import gevent
import msgpack
import pytest

from capacity.core.errors import CapacityError
from capacity.load.engine import EngineStage, StageEngine
from capacity.load.executors import EXHAUSTED
from capacity.load.measure import flow_stats, merge_parts, stage_from_wire, stage_to_wire
from capacity.load.session_auth import SessionTokens
from capacity.load.session_plan import Session, StepProgram, extract_into, session_plan
from capacity.plan.experiment import load_experiment
from capacity.plan.session_steps import MISSING, Think, parse_json_path, walk
from capacity.plan.target import Auth
from capacity.plan.workload import Workload
from tests.conftest import REPO


class FakeSessionExecutor:
    """Answers after ``delay_s``; logs (session id, flow, step, kind, record) per call."""

    def __init__(self, workload: Workload, *, delay_s: float = 0.0, codes: dict[int, int | str] | None = None) -> None:
        self.names = [e.name for e in workload.endpoints]
        self.sessions = session_plan(workload)
        assert self.sessions is not None
        self.weights = list(self.sessions.weights)
        self.delay_s = delay_s
        self.codes = codes or {}
        self.next_record = 0
        self.records = 10**9
        self.log: list[tuple[int, int, int, str]] = []
        """(flow, step, kind, record) per call; every session gets a record of its own here."""
        self.independent: Counter[int] = Counter()

    def prepare(self, max_inflight: int) -> None:
        pass

    def new_state(self) -> Any:
        return None

    def execute(self, kind: int, state: Any) -> int | str:
        self.independent[kind] += 1
        if self.delay_s:
            gevent.sleep(self.delay_s)
        return 200

    def execute_step(self, step: StepProgram, sess: Session, state: Any) -> int | str:
        if sess.values is None:
            if self.next_record >= self.records:
                return EXHAUSTED
            sess.values = {"rec": str(self.next_record)}
            self.next_record += 1
        self.log.append((sess.flow, sess.step, step.kind, sess.values["rec"]))
        if self.delay_s:
            gevent.sleep(self.delay_s)
        return self.codes.get(step.kind, 200)

    def reset(self) -> None:
        pass

    def close(self) -> None:
        pass


def staging_workload(**step_changes: Any) -> Workload:
    """The staging file's flows without its think times (unless given), so sessions end within a stage."""
    step_changes = {"think_s": 0.0, **step_changes}
    wl = load_experiment(REPO / "experiments" / "clinician-workflow-staging.toml").workload
    data = wl.model_dump()
    data["test_data"] = {"source": "none"}
    for f in data["flows"]:
        for s in f["steps"]:
            s.update(step_changes)
    return Workload.model_validate(data)


def run(ex: FakeSessionExecutor, **kw: Any) -> Any:
    args = {"rate": 400.0, "duration_s": 1.0, "warmup_s": 0.0, "max_inflight": 500, "drain_s": 1.0}
    return StageEngine(ex, grace_s=0.2).run(EngineStage(**{**args, **kw}))


def test_staging_sessions_give_the_seeds_per_endpoint_rates_and_one_record_each() -> None:
    ex = FakeSessionExecutor(staging_workload())
    raw = run(ex, rate=1500.0, duration_s=1.2)
    part = raw.part(include_warmup=True)
    # requests per endpoint against the seed's table: 5,422 / 2,417 / 588 / 588 of 9,015
    total = part.total_requests
    shares = dict(zip(raw.names, (n / total for n in part.requests), strict=True))
    assert total > 1500
    for name, rpm in (("demographics_status_get", 5422), ("demographics_status_set", 2417)):
        assert shares[name] == pytest.approx(rpm / 9015, abs=0.015)
    assert shares["appointment_summary"] == pytest.approx(588 / 9015, abs=0.01)
    assert shares["appointment_checkin"] == pytest.approx(588 / 9015, abs=0.01)
    assert not ex.independent  # every request belongs to a session
    # one record per session, the flow's calls in order
    by_session: dict[int, list[tuple[int, int, int, str]]] = defaultdict(list)
    for flow, step, kind, rec in ex.log:
        by_session[int(rec)].append((flow, step, kind, rec))
    kinds = {0: [0, 0, 1], 1: [0, 2, 3]}  # pre-check-in: get, get, set; check-in: get, summary, check-in
    done = [calls for calls in by_session.values() if len(calls) == 3]
    assert len(done) > 400
    for calls in by_session.values():  # the session's calls, in flow order (the last may be cut by the end)
        assert len({flow for flow, *_ in calls}) == 1
        assert [k for _, _, k, _ in calls] == kinds[calls[0][0]][: len(calls)]
    assert ex.next_record == len(by_session)  # one record taken per session, none per call
    [pre, ci] = part.flows
    assert pre.started + ci.started == len(by_session)
    assert ci.started / (pre.started + ci.started) == pytest.approx(588 / 3005, abs=0.02)
    assert raw.flow_rates == pytest.approx([1500 * 2417 / 9015, 1500 * 588 / 9015])


def test_a_failing_step_ends_the_session_there() -> None:
    wl = staging_workload()
    checkin = [e.name for e in wl.endpoints].index("appointment_checkin")
    ex = FakeSessionExecutor(wl, codes={checkin: 409})
    raw = run(ex, duration_s=0.5)
    ci = raw.part(include_warmup=True).flows[1]
    assert ci.started > 10
    assert ci.failed == ci.started - ci.unfinished and ci.completed == 0
    assert ci.failed_at == [0, 0, ci.failed]
    stats = flow_stats(raw.part(include_warmup=True), raw.flow_rates, 1.0)["check-in"]
    assert stats.failed_at_step == {"3": ci.failed} and stats.failed_ratio == 1.0
    assert stats.p95_s is None  # no completed session: no duration


def test_sessions_running_at_the_end_are_unfinished_and_think_time_holds_no_slot() -> None:
    ex = FakeSessionExecutor(staging_workload(think_s=0.3))
    raw = run(ex, rate=300.0, duration_s=1.0, max_inflight=5)
    part = raw.part(include_warmup=True)
    for f in part.flows:
        # every started session is accounted for
        assert f.started == f.completed + f.failed + f.unfinished
    [pre, ci] = part.flows
    assert pre.unfinished > 0 and ci.unfinished > 0  # those started in the last ~0.6 s
    assert pre.completed > 0  # two thinks of 0.3 s: done within the second
    assert pre.failed == 0 and ci.failed == 0  # thinking sessions never filled the 5 slots
    durations = pre.hist.get_value_at_percentile(50) / 1e6
    assert 0.6 <= durations < 0.75
    # no call was sent after the stage's end
    assert sum(part.requests) == len(ex.log)


def test_exhausted_records_fail_sessions_at_their_first_step() -> None:
    ex = FakeSessionExecutor(staging_workload())
    ex.records = 5
    raw = run(ex, rate=200.0, duration_s=0.5)
    assert raw.records_exhausted > 0
    part = raw.part(include_warmup=True)
    assert sum(f.failed_at[0] for f in part.flows) == raw.records_exhausted


def test_flow_counts_survive_the_wire_and_add_up_across_workers() -> None:
    ex = FakeSessionExecutor(staging_workload())
    raw = run(ex, duration_s=0.5)
    d = msgpack.unpackb(msgpack.packb(stage_to_wire(3, raw), use_bin_type=True), raw=False)
    back = stage_from_wire(d)
    merged = merge_parts([raw, back], include_warmup=True)
    one = raw.part(include_warmup=True)
    for m, f in zip(merged.flows, one.flows, strict=True):
        assert (m.started, m.completed, m.unfinished) == (2 * f.started, 2 * f.completed, 2 * f.unfinished)
        assert m.hist.get_total_count() == 2 * f.hist.get_total_count()
    assert back.flow_rates == raw.flow_rates


def test_mix_mode_keeps_independent_requests() -> None:
    wl = staging_workload()
    data = wl.model_dump()
    for f in data["flows"]:
        f["mode"] = "mix"
    mixed = Workload.model_validate(data)
    assert session_plan(mixed) is None and mixed.sessions == []
    assert [e.rpm for e in mixed.endpoints] == [e.rpm for e in wl.endpoints]  # same 1x table either way


def test_fractional_counts_hold_their_mean() -> None:
    wl = Workload.model_validate(
        {
            "endpoints": [{"name": "a", "path": "/a"}, {"name": "b", "path": "/b"}],
            "flows": [{"name": "f", "per_hour": 60, "steps": [{"endpoint": "a"}, {"endpoint": "b", "count": 1.5}]}],
            "test_data": {"source": "none"},
        }
    )
    plan = session_plan(wl)
    assert plan is not None and plan.ratio == pytest.approx(1 / 2.5)
    step = plan.flows[0].steps[1]
    rng = random.Random(1)
    assert sum(step.calls(rng) for _ in range(20000)) / 20000 == pytest.approx(1.5, abs=0.02)


def test_json_paths_and_extraction() -> None:
    assert parse_json_path("$.data.attributes.jobId") == ("data", "attributes", "jobId")
    assert parse_json_path('$.items[2]["odd key"]') == ("items", 2, "odd key")
    for bad in ("data.id", "$", "$.a..b", "$.a[x]"):
        with pytest.raises(ValueError):
            parse_json_path(bad)
    doc = {"data": {"id": 7, "tags": ["x"]}}
    assert walk(doc, ("data", "tags", 0)) == "x" and walk(doc, ("data", "nope")) is MISSING
    values: dict[str, str] = {}
    assert extract_into(values, b'{"data": {"id": 7}}', (("pid", ("data", "id")),)) and values == {"pid": "7"}
    assert not extract_into(values, b"not json", (("pid", ("data", "id")),))
    assert not extract_into(values, b'{"data": {}}', (("pid", ("data", "id")),))


def test_think_time_distributions() -> None:
    rng = random.Random(3)
    u = Think(uniform=(1.0, 3.0))
    draws = [u.draw(rng) for _ in range(5000)]
    assert min(draws) >= 1.0 and max(draws) <= 3.0 and u.mean_s == 2.0
    e = Think(exponential=2.0)
    assert sum(e.draw(rng) for _ in range(20000)) / 20000 == pytest.approx(2.0, rel=0.05)
    with pytest.raises(ValueError):
        Think(uniform=(3.0, 1.0))
    with pytest.raises(ValueError):
        Think()
    assert Think(fixed=1.5).draw(rng) == 1.5


class TokenLog:
    """A fake token command: 20 ms per fetch, counting how many run at once."""

    def __init__(self, fail: bool = False) -> None:
        self.n = 0
        self.running = 0
        self.most = 0
        self.fail = fail

    def __call__(self, auth: Auth, cwd: str | None) -> str:
        self.running += 1
        self.most = max(self.most, self.running)
        gevent.sleep(0.02)
        self.running -= 1
        if self.fail:
            raise CapacityError("token command failed")
        self.n += 1
        return f"Bearer t{self.n}"


class TokenExecutor(FakeSessionExecutor):
    def __init__(self, workload: Workload, tokens: SessionTokens) -> None:
        super().__init__(workload)
        self.session_tokens = tokens
        self.seen: dict[str, set[str]] = defaultdict(set)

    def execute_step(self, step: StepProgram, sess: Session, state: Any) -> int | str:
        code = super().execute_step(step, sess, state)
        assert sess.headers is not None and sess.values is not None
        self.seen[sess.values["rec"]].add(sess.headers["Authorization"])
        return code


def test_session_scope_gives_each_session_its_own_token_from_a_bounded_pool() -> None:
    auth = Auth(command="x", scope="session", session_fetches=3)
    fetch = TokenLog()
    ex = TokenExecutor(staging_workload(), SessionTokens(auth, fetch=fetch))
    raw = run(ex, rate=300.0, duration_s=0.6)
    part = raw.part(include_warmup=True)
    started = sum(f.started for f in part.flows)
    assert fetch.most == 3  # never more fetches at once than session_fetches
    assert 60 <= fetch.n <= started  # ~3 fetches per 20 ms; sessions still queued at the end are unfinished
    assert all(len(tokens) == 1 for tokens in ex.seen.values())  # one token per session, every call
    assert len({t for tokens in ex.seen.values() for t in tokens}) == len(ex.seen)  # never shared
    assert sum(f.completed + f.failed + f.unfinished for f in part.flows) == started


def test_a_failing_token_command_fails_sessions_at_their_first_step() -> None:
    auth = Auth(command="x", scope="session")
    ex = TokenExecutor(staging_workload(), SessionTokens(auth, fetch=TokenLog(fail=True)))
    raw = run(ex, rate=100.0, duration_s=0.5)
    part = raw.part(include_warmup=True)
    assert sum(part.requests) == 0 and ex.log == []
    assert sum(f.failed_at[0] for f in part.flows) > 0
    assert all(f.failed == f.failed_at[0] for f in part.flows)


def test_session_tokens_run_the_real_command() -> None:
    auth = Auth(command="echo tok-$RANDOM", scope="session", session_fetches=2, format="T {token}")
    tokens = SessionTokens(auth)
    got: list[dict[str, str] | None] = []
    tokens.start()
    for i in range(4):
        tokens.request(i, lambda _s, h: got.append(h))
    deadline = time.monotonic() + 5
    while len(got) < 4 and time.monotonic() < deadline:
        gevent.sleep(0.01)
    tokens.stop()
    assert len(got) == 4 and all(h is not None and h["Authorization"].startswith("T tok-") for h in got)
    assert tokens.fetches == 4
