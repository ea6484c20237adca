"""The recommendation's chain, range, extrapolation and limits in summary.md and report.html (issue 20 item 2)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from capacity.report import write_report

CHAIN = [
    {"step": "demand", "value": 216.0, "source": "peak 180 req/s x (1 + unmodelled_share 0.2)", "extrapolated": False},
    {"step": "tasks by throughput", "value": 4.32, "source": "demand x 1.2 / 60", "extrapolated": True},
    {"step": "N+1", "value": 9, "source": "one spare beyond 6 task(s)", "extrapolated": True},
]


def test_chain_and_limits_in_summary_md_and_report(tmp_path: Path, synthetic_run: Callable[..., Path]) -> None:
    run = synthetic_run(tmp_path, 120.0)
    summary = json.loads((run / "summary.json").read_text())
    summary["recommendation"] = {
        "app_tasks": 9,
        "app_tasks_range": [6, 12],
        "sidekiq_tasks": 6,
        "binding_constraint": "CPU reaches cpu_target 60% first",
        "expected_utilisation": 0.4,
        "expected_cpu_utilisation": 0.45,
        "chain": CHAIN,
        "extrapolation": {"largest_measured_tasks": 2, "ratio": 4.5, "extrapolated": True},
        "limits": [{"name": "db_max_connections", "need": 105.0, "limit": 100, "ok": False, "how": "..."}],
    }
    (run / "summary.json").write_text(json.dumps(summary))
    write_report(run)
    md = (run / "summary.md").read_text()
    assert "**Production:** 9 app tasks [6-12], 6 Sidekiq tasks" in md
    assert "40% of SLO capacity used at peak, CPU 45%" in md
    assert "extrapolated 4.5x past the largest measured size (2)" in md
    assert "exceeds db_max_connections (105 > 100)" in md
    assert "- demand: 216  <- peak 180 req/s x (1 + unmodelled_share 0.2)" in md
    assert "- N+1: 9  <- one spare beyond 6 task(s)" in md
    html = (run / "report.html").read_text()
    assert 'class="recommendation-chain"' in html
    assert "<td>tasks by throughput</td><td>4.32</td><td>demand x 1.2 / 60</td><td>yes</td>" in html
