"""Test data running out mid-run (issue 14 item 6): the stage is ``invalid: test data``, never a failing
stage or a knee, and the run stops with ``stopped_reason: "test-data"``."""

from __future__ import annotations

from pathlib import Path

import pytest
from rich.console import Console

from capacity.plan.experiment import parse_experiment
from capacity.search import SearchOptions, run_search
from tests.load.servers import DelayServer

pytestmark = [pytest.mark.slow, pytest.mark.waits]


def test_running_out_mid_run_is_an_invalid_stage_and_stops_the_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the budget check would refuse this plan before the run: switch it off to see the mid-run rule
    monkeypatch.setattr("capacity.search.setup.check_test_data_budget", lambda exp: None)
    with DelayServer(0.0) as srv:
        exp = parse_experiment(
            {
                "name": "runs-out",
                "target": {"base_url": srv.url},
                "workload": {
                    "endpoints": [
                        {"name": "read", "path": "/r/{dfn}", "weight": 1},
                        {"name": "checkin", "method": "POST", "path": "/c/{ien}", "weight": 1, "consumes": True},
                    ],
                    "test_data": {"source": "sandbox", "records": 60},
                },
                "stages": {
                    "strategy": "linear",
                    "start_rps": 20,
                    "step_rps": 20,
                    "max_rps": 60,
                    "stage_seconds": 4,
                    "warmup_seconds": 1,
                    "recovery_timeout_s": 2,
                },
                "guards": {"slo_p95_ms": 1000},
                "metrics": {"source": "none"},
            },
            source="runs-out.toml",
        )
        summary = run_search(
            exp,
            options=SearchOptions(results_root=tmp_path, json_mode=True, write_report=False),
            console=Console(quiet=True),
        )
    verdicts = [s.verdict for s in summary.stages]
    # stage 1 (20/s x 4 s, half consuming = 40 records + 1 smoke) fits in 60; stage 2 runs out
    assert verdicts == ["pass", "invalid: test data"], [s.reasons for s in summary.stages]
    assert summary.stopped_reason == "test-data"
    assert summary.stages[1].reasons[0].startswith("test data ran out")
    assert summary.knee_rps is None or summary.knee_rps < 40
    assert any("ran out of test records" in w for w in summary.warnings)
