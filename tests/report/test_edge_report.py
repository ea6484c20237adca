"""The report at the edge (issue 13 item 5): aborted stages and censored percentiles marked, per-endpoint results."""

from __future__ import annotations

from pathlib import Path

from capacity.core.models import EndpointStats, StageResult
from capacity.report import write_report
from capacity.report.plots import endpoint_figure, flag, latency_figure
from capacity.store import RunStore, load_run
from tests.report.conftest import make_run


def _edge_run(root: Path) -> Path:
    """The synthetic run, its last stage aborted in its warm-up with censored percentiles; two endpoints."""
    run = make_run(root, 100.0)
    for f in sorted((run / "stages").glob("stage-*.json")):
        r = StageResult.model_validate_json(f.read_text(encoding="utf-8"))
        slow = (r.p95_ms or 0.0) * 1.8
        update: dict[str, object] = {
            "endpoints": {
                "GET /status": EndpointStats(requests=r.requests, ok=r.ok, p50_ms=r.p50_ms, p95_ms=slow, p99_ms=slow),
                "POST /checkins": EndpointStats(requests=10, ok=10, p50_ms=9.0, p95_ms=12.0, p99_ms=14.0),
            }
        }
        if r.index == 4:
            update |= {
                "aborted_early": True,
                "aborted_in_warmup": True,
                "unfinished": 333,
                "percentiles_censored": True,
            }
        f.write_text(r.model_copy(update=update).model_dump_json(indent=2) + "\n", encoding="utf-8")
    RunStore(run)._refresh_tables()
    return run


def test_aborted_and_censored_stages_are_marked_and_endpoints_shown(tmp_path: Path) -> None:
    run = _edge_run(tmp_path)
    loaded = load_run(run)
    assert flag(loaded.stages, "aborted_early").tolist() == [False, False, False, False, True]
    assert set(loaded.endpoints["endpoint"]) == {"GET /status", "POST /checkins"}
    labels = [t.get_text() for t in latency_figure(loaded.stages).axes[0].get_legend().get_texts()]
    assert "aborted stage" in labels and any("lower bound" in x for x in labels)
    lines = endpoint_figure(loaded.endpoints, loaded.stages).axes[0].get_lines()
    assert {line.get_label() for line in lines} >= {"GET /status", "POST /checkins"}
    text = write_report(run).read_text(encoding="utf-8")
    assert 'data-plot="endpoints"' in text and 'class="endpoints"' in text
    assert "fail (aborted in warm-up)" in text
    assert "≥ " in text  # censored percentiles read as lower bounds
    assert (run / "plots" / "endpoints.png").is_file()


def test_a_run_without_endpoint_results_skips_the_endpoint_plot(tmp_path: Path) -> None:
    run = make_run(tmp_path, 100.0)
    text = write_report(run).read_text(encoding="utf-8")
    assert "No per-endpoint results in this run." in text and 'data-plot="endpoints"' not in text
