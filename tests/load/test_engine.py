"""The stage engine against fake executors: exact counts, per-second closes, drain, drops, stops.

Fake executors answer at once (or after a gevent sleep), so each stage takes about its own length;
stages are kept at half a second to a second and a half.
"""

from __future__ import annotations

import time
from typing import Any

import gevent

from capacity.load.engine import EngineStage, SecondRaw, StageEngine, StageRaw, stage_seconds
from capacity.load.executors import EXHAUSTED
from capacity.load.schedule import arrival_chunks


class FakeExecutor:
    """Answers ``codes[i % len(codes)]`` for the i-th request, after ``delay_s`` (gevent sleep)."""

    def __init__(self, *, delay_s: float = 0.0, codes: tuple[int | str, ...] = (200,), kinds: int = 1) -> None:
        self.names = [f"k{i}" for i in range(kinds)]
        self.weights = [1.0] * kinds
        self.delay_s = delay_s
        self.codes = codes
        self.calls = 0
        self.resets = 0
        self.max_inflight = 0

    def prepare(self, max_inflight: int) -> None:
        self.max_inflight = max_inflight

    def new_state(self) -> Any:
        return None

    def execute(self, kind: int, state: Any) -> int | str:
        i = self.calls
        self.calls += 1
        if self.delay_s:
            gevent.sleep(self.delay_s)
        return self.codes[i % len(self.codes)]

    def reset(self) -> None:
        self.resets += 1

    def close(self) -> None:
        pass


def run(ex: FakeExecutor, **kw: Any) -> tuple[StageRaw, list[SecondRaw]]:
    closed: list[SecondRaw] = []

    def on_second(s: SecondRaw) -> str | None:
        closed.append(s)
        return None

    kw.setdefault("warmup_s", 0.0)
    kw.setdefault("drain_s", 1.0)
    hooks = {"on_second": kw.pop("on_second", on_second), "should_stop": kw.pop("should_stop", None)}
    raw = StageEngine(ex, grace_s=0.1).run(EngineStage(**kw), **hooks)
    return raw, closed


def test_seeded_schedule_is_offered_exactly_and_seconds_add_up_to_the_totals() -> None:
    ex = FakeExecutor(kinds=3)
    raw, closed = run(ex, rate=200.0, duration_s=1.05, warmup_s=0.5, seed=3)
    assert [s.k for s in closed] == [0, 1] == [s.k for s in raw.seconds]
    # every arrival of the schedule is offered, warm-up included; the totals cover the measured part
    assert ex.calls == 210 and [s.offered for s in raw.seconds] == [200, 10]
    assert sum(s.ok for s in raw.seconds) == 210 and sum(s.hist.get_total_count() for s in raw.seconds) == 210
    assert raw.requests == raw.ok == 110 and raw.errors == 0 and raw.dropped == 0
    assert raw.status_codes == {"200": 110} and raw.stopped is None
    assert sum(raw.kind_requests) == 110 and all(abs(n - 110 / 3) <= 10 for n in raw.kind_requests)
    assert sum(h.get_total_count() for h in raw.kind_hists) == 110
    assert raw.load_stopped_wall <= raw.ended_wall


def test_poisson_count_follows_the_seeded_schedule() -> None:
    expected = sum(len(c) for c in arrival_chunks(150.0, 0.3, arrival="poisson", seed=11))
    raw, _ = run(FakeExecutor(), rate=150.0, duration_s=0.3, arrival="poisson", seed=11)
    assert raw.requests == expected and raw.dropped == 0


def test_full_inflight_cap_drops_arrivals_instead_of_sending_them_late() -> None:
    ex = FakeExecutor(delay_s=0.25)
    raw, closed = run(ex, rate=100.0, duration_s=0.3, max_inflight=2)
    assert ex.max_inflight == 2
    assert raw.requests + raw.dropped == 30  # every scheduled arrival is either sent or dropped
    assert raw.requests == ex.calls and 2 <= raw.requests <= 6 and raw.dropped >= 24
    assert closed[0].inflight <= 2 and closed[0].dropped == raw.dropped


def test_drain_waits_for_in_flight_requests_on_a_normal_end() -> None:
    ex = FakeExecutor(delay_s=0.3)
    raw, _ = run(ex, rate=20.0, duration_s=0.3, drain_s=1.0)
    assert raw.requests == 6 and raw.ok == 6 and "aborted" not in raw.status_codes
    assert ex.resets == 0
    # completions after the stage's end are in the totals, not in the (closed) seconds
    assert sum(s.ok for s in raw.seconds) < raw.ok


def test_drain_that_times_out_kills_the_slots_and_resets_the_executor() -> None:
    ex = FakeExecutor(delay_s=2.0)
    raw, _ = run(ex, rate=20.0, duration_s=0.3, drain_s=0.1)
    assert raw.requests == 6 and raw.ok == 0
    assert raw.status_codes == {"aborted": 6} and ex.resets == 1


def test_exhausted_test_data_is_counted_by_the_engine() -> None:
    raw, _ = run(FakeExecutor(codes=(200, EXHAUSTED)), rate=40.0, duration_s=0.3)
    assert raw.records_exhausted == 6 and raw.status_codes == {"200": 6, EXHAUSTED: 6}
    assert raw.ok == 6 and raw.errors == 6
    assert raw.kind_hists[0].get_total_count() == 6  # nothing was sent for an exhausted arrival


def test_on_second_reason_stops_the_stage_after_that_second() -> None:
    raw, _ = run(FakeExecutor(), rate=50.0, duration_s=3.0, on_second=lambda s: "slo breach" if s.k == 0 else None)
    assert raw.stopped == "slo breach" and len(raw.seconds) == 1
    # the second closes a grace (0.1 s) after it ends, so a few arrivals of the next were sent
    assert raw.seconds[0].offered == 50 and 50 <= raw.requests <= 60


def test_should_stop_ends_the_stage_within_a_tenth_of_a_second() -> None:
    calls = {"n": 0}

    def should_stop() -> str | None:
        calls["n"] += 1
        return "interrupted" if calls["n"] > 2 else None

    t0 = time.monotonic()
    raw, _ = run(FakeExecutor(), rate=50.0, duration_s=3.0, should_stop=should_stop)
    assert time.monotonic() - t0 < 1.0
    assert raw.stopped == "interrupted" and len(raw.seconds) == 1 and raw.requests < 20


def test_stage_seconds_counts_a_partial_last_second() -> None:
    assert [stage_seconds(d) for d in (0.2, 1.0, 1.5, 2.0)] == [1, 1, 2, 2]
