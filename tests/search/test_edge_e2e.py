"""Issue 13 on a target that builds a real queue: the sandbox with a deep backlog at 1.3x its capacity.

One stage at 208/s against 160/s (2 tasks x 4 threads, 50 ms mean, exponential service times), a
backlog deep enough that nothing is refused, and a warm-up longer than the guard window, so the p95
guard stops the stage while its failing window lies in the warm-up. Two cases: Poisson arrivals with
the stop inside the warm-up, and uniform arrivals with the stop just after it (the issue's report: its
figures came from the fraction of a second after the warm-up). Either way the stage must report every
arrival up to the stop, the requests killed there as unfinished (failures, censored waits), a p95 no
lower than the window that failed it, and offered over the same window as the arrivals.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from rich.console import Console

from capacity import notebook
from capacity.load.schedule import arrival_chunks
from capacity.sandbox import SandboxConfig, truth
from capacity.search import SearchOptions, run_search
from tests.helpers import make_experiment

pytestmark = pytest.mark.slow

RATE = 208.0


@pytest.mark.parametrize(("arrival", "warmup_s"), [("poisson", 7.0), ("uniform", 4.5)])
def test_a_stage_stopped_at_the_edge_is_measured_honestly(tmp_path: Path, arrival: str, warmup_s: float) -> None:
    exp = make_experiment(builtin=True).with_changes(
        sandbox={"backlog": 4000, "service_dist": "exp"},
        stages={
            "strategy": "linear",
            "start_rps": RATE,
            "max_rps": RATE,
            "step_rps": 10.0,
            "stage_seconds": 10.0,
            "warmup_seconds": warmup_s,
            "arrival": arrival,
            "max_inflight": 3000,
        },
        guards={"slo_p95_ms": 250.0, "window_seconds": 3},
        metrics={"source": "none"},
    )
    assert 1.2 < RATE / truth(SandboxConfig.from_settings(exp.sandbox)).pool_rps < 1.4
    summary = run_search(
        exp,
        options=SearchOptions(results_root=tmp_path, json_mode=True, write_report=False),
        console=Console(quiet=True),
    )
    [st] = summary.stages
    assert st.verdict == "fail" and st.aborted_early and st.breaches[0].code == "p95", st.reasons
    assert st.aborted_in_warmup and st.measure_from == st.started_at
    # the requests killed at the stop are counted, as failures, with their waits as lower bounds
    assert st.unfinished > 0 and st.percentiles_censored and st.status_codes["aborted"] == st.unfinished
    assert st.requests == st.ok + st.errors + st.unfinished
    assert st.error_ratio == pytest.approx((st.errors + st.unfinished) / st.requests, abs=1e-6)
    # a p95 no lower than any second of the window that failed it
    run = notebook.load(summary.results_dir)
    series = run.seconds[run.seconds["stage"] == st.index]
    window = series.tail(exp.guards.window_seconds)
    assert st.p95_ms is not None and st.p95_ms >= window["p95_ms"].max()
    # offered over exactly the window whose arrivals were scheduled (start to stop, nothing dropped)
    assert st.dropped == 0
    window_s = st.requests / st.offered_rps
    scheduled = sum(
        sum(1 for t in chunk if t < window_s)
        for chunk in arrival_chunks(RATE, 10.0, arrival=exp.stages.arrival, seed=exp.stages.seed + st.index)
    )
    assert abs(st.requests / scheduled - 1) < 0.01, (st.requests, scheduled)
    if arrival == "uniform":
        assert abs(st.offered_rps / RATE - 1) < 0.01, st.offered_rps
    # per-endpoint figures add up to the stage's, in the stage JSON and in endpoints.parquet
    eps = st.endpoints
    assert set(eps) == {e.name for e in exp.workload.endpoints}
    for field in ("requests", "ok", "errors", "unfinished"):
        assert sum(getattr(e, field) for e in eps.values()) == getattr(st, field), field
    table = run.endpoints[run.endpoints["stage"] == st.index]
    assert sorted(table["endpoint"]) == sorted(eps) and int(table["requests"].sum()) == st.requests
    assert st.worst_endpoint in eps
