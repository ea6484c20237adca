"""The live stage table fits an 80-column terminal (issue 13 item 7): no header cut, the verdict's reason whole."""

from __future__ import annotations

from rich.console import Console

from capacity.core.breach import Breach
from capacity.core.models import SecondSample, StageResult
from capacity.search.progress import COLUMNS, Progress
from tests.helpers import make_stage_result


def _stage(index: int, rate: float, verdict: str, breaches: list[Breach], **changes: object) -> StageResult:
    result = make_stage_result(
        index=index,
        target_rps=rate,
        offered_rps=rate * 1.01,
        achieved_rps=rate * 0.95,
        p50_ms=20.0,
        p95_ms=52.8,
        p99_ms=60.0,
        verdict=verdict,
        breaches=breaches,
    )
    return result.model_copy(update=changes)


def test_the_stage_table_fits_80_columns_with_whole_headers_and_reasons() -> None:
    console = Console(width=80, record=True, force_terminal=False, color_system=None)
    progress = Progress(console, title="clinician-workflow-staging: adaptive search")
    p95 = Breach(code="p95", metric="p95_ms", text="p95 812 ms > SLO 500 ms", value=812.4, limit=500.0)
    progress.rows = [
        _stage(0, 40.0, "pass", []),
        _stage(11, 1256.29, "fail", [p95], dropped=12345, error_ratio=0.943, probe="confirm"),
        _stage(12, 195.97, "invalid: generator", [Breach(code="generator", metric="cpu", text="", value=97.0)]),
    ]
    progress.current = (
        13,
        256.29,
        "bisect",
        [
            SecondSample(
                stage=13,
                t=0.0,
                phase="warmup",
                target_rps=256.29,
                offered=256,
                ok=20,
                errors=0,
                dropped=0,
                inflight=355,
            )
        ],
    )
    console.print(progress._render())
    text = console.export_text()
    lines = text.splitlines()
    assert max(len(line) for line in lines) <= 80
    assert "…" not in text
    header = next(line for line in lines if "probe" in line)
    for name, _ in COLUMNS:
        assert name in header
    assert "verdict" in header
    assert "fail: p95 812" in text
    assert "running" in text


def test_the_slowest_endpoint_is_named_unless_the_verdict_names_it() -> None:
    from capacity.core.models import EndpointStats

    fast = EndpointStats(requests=100, ok=100, p95_ms=40.0)
    slow = EndpointStats(requests=100, ok=100, p95_ms=612.0)
    endpoints = {"appointment_checkin": fast, "demographics_status_get": slow}
    passed = _stage(0, 40.0, "pass", [], endpoints=endpoints, worst_endpoint="demographics_status_get")
    scoped = Breach(
        "p95",
        "p95_ms",
        "demographics_status_get: p95 612 ms > SLO 300 ms",
        612.0,
        300.0,
        scope="demographics_status_get",
    )
    failed = _stage(1, 80.0, "fail", [scoped], endpoints=endpoints, worst_endpoint="demographics_status_get")
    console = Console(width=80, record=True, force_terminal=False, color_system=None)
    progress = Progress(console)
    progress.rows = [passed, failed]
    console.print(progress._render())
    text = console.export_text()
    assert "slowest demographics_status_get 612" in " ".join(text.split())  # wrapped in its cell, never cut
    assert text.count("slowest") == 1  # the failing stage's verdict already names it
