"""Datadog calls per stage and seconds from stage end to a complete window, against the fake Datadog.

    .venv/bin/python benchmarks/bench_observe.py

Prints, for the default query set (10 queries): HTTP calls per stage fetch batched (ours) against
one call per query (the baseline, same run, same fake), and for several ingestion lags the seconds
from the stage's end until every metric covered the window (rollup 1 s, poll every 0.5 s).
Loopback only; every loop is bounded by the poll deadline.
"""

from __future__ import annotations

import sys
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from capacity.observe import StageWindow, resolve_queries
from capacity.observe.datadog import DatadogSource
from capacity.observe.datadog_settings import DatadogEndpoint, PollSettings, QueryPlan
from tests.observe.conftest import API_KEY, APP_KEY, make_exp, populate
from tests.observe.fake_datadog import FakeDatadog


def _source(fake: FakeDatadog, queries: dict[str, str], rollup: int, deadline: float) -> DatadogSource:
    return DatadogSource(
        DatadogEndpoint(fake.url, API_KEY, APP_KEY),
        QueryPlan(queries, rollup_s=rollup, max_threads=5.0),
        poll=PollSettings(deadline_s=deadline, interval_s=0.5),
    )


def calls_per_stage() -> None:
    with FakeDatadog(api_key=API_KEY, app_key=APP_KEY) as fake:
        now = time.time()
        populate(fake, now - 120, now)
        w = StageWindow(0, datetime.fromtimestamp(now - 80, UTC), datetime.fromtimestamp(now - 60, UTC))
        queries = resolve_queries(make_exp(fake.url).metrics)
        t = time.perf_counter()
        batched = _source(fake, queries, 5, 0).fetch_stage(w, wait=False)
        t_batched = time.perf_counter() - t
        before = fake.calls()
        t = time.perf_counter()
        for name, q in queries.items():  # baseline: one query per call
            _source(fake, {name: q}, 5, 0).fetch_stage(w, wait=False)
        t_single = time.perf_counter() - t
        single = fake.calls() - before
        print(f"default query set: {len(queries)} queries")
        print(f"  batched v1 calls per stage fetch: {batched.calls}  ({t_batched * 1000:.0f} ms)")
        print(f"  one-query-per-call baseline:      {single}  ({t_single * 1000:.0f} ms)")
        print(f"  ratio calls baseline/batched:     {single / batched.calls:.1f}x")
        print(
            f"  at 1600 queries/h per org: {1600 // batched.calls} stage fetches/h batched "
            f"vs {1600 // single} unbatched"
        )


def completion_delay() -> None:
    print("seconds from stage end to a complete window (rollup 1 s, poll 0.5 s):")
    for lag in (0.0, 2.0, 5.0):
        with FakeDatadog(api_key=API_KEY, app_key=APP_KEY) as fake:
            now = time.time()
            populate(fake, now - 60, now + 30)
            fake.lag_s = {"": lag}
            queries = resolve_queries(make_exp(fake.url, rollup_seconds=1).metrics)
            end = float(int(now))  # a stage that just ended on a whole second
            w = StageWindow(0, datetime.fromtimestamp(end - 10, UTC), datetime.fromtimestamp(end, UTC))
            while time.time() < end:
                time.sleep(0.01)
            sm = _source(fake, queries, 1, lag + 10).fetch_stage(w)
            done = f"{sm.seconds_to_complete:.2f} s" if sm.seconds_to_complete is not None else "never"
            print(f"  ingestion lag {lag:.0f} s: complete after {done}, {sm.calls} calls (polls)")


if __name__ == "__main__":
    calls_per_stage()
    completion_delay()
