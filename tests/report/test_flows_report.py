"""Per-flow session results (issue 24) in the run folder, the notebook API and the report."""

from __future__ import annotations

from pathlib import Path

from capacity import notebook
from capacity.core.models import FlowStats, StageResult
from capacity.report import write_report
from capacity.store import RunStore
from tests.report.conftest import make_run


def test_flows_reach_the_parquet_the_notebook_and_the_report(tmp_path: Path) -> None:
    run = make_run(tmp_path, 100.0)
    for f in sorted((run / "stages").glob("stage-*.json")):
        r = StageResult.model_validate_json(f.read_text(encoding="utf-8"))
        flows = {
            "check-in": FlowStats(
                started=40 + r.index,
                completed=38,
                failed=2,
                failed_at_step={"3": 2},
                unfinished=r.index,
                p50_s=2.25,
                p95_s=4.5,
                planned_per_s=round(r.target_rps * 588 / 9015, 4),
                started_per_s=round(r.target_rps * 588 / 9015, 4),
            )
        }
        f.write_text(r.model_copy(update={"flows": flows}).model_dump_json(indent=2) + "\n", encoding="utf-8")
    RunStore(run)._refresh_tables()
    nb = notebook.load(run).flows
    assert list(nb["flow"].unique()) == ["check-in"]
    assert nb.sort_values("stage")["started"].tolist() == [40 + i for i in sorted(nb["stage"])]
    assert set(nb["failed_at_step"]) == {"3:2"}
    text = write_report(run).read_text(encoding="utf-8")
    section = text.split('<section id="flows">')[1].split("</section>")[0]
    assert 'class="flows"' in section and "check-in" in section and "4.50" in section and "3:2" in section


def test_a_run_without_sessions_says_so(tmp_path: Path) -> None:
    text = write_report(make_run(tmp_path, 100.0)).read_text(encoding="utf-8")
    assert "No flow ran as sessions in this run." in text
