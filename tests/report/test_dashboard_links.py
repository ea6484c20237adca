"""The team's dashboard linked over a window: from_ts/to_ts in ms, live=false, other parameters kept."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from capacity.report.links import dashboard_link


def test_window_in_milliseconds_and_fixed() -> None:
    start = datetime(2026, 11, 27, 3, 15, tzinfo=UTC)
    end = datetime(2026, 11, 27, 3, 20, 30, 500000, tzinfo=UTC)
    link = dashboard_link("https://app.ddog-gov.com/dashboard/abc-123", start, end)
    parts = urlsplit(link)
    assert (parts.scheme, parts.netloc, parts.path) == ("https", "app.ddog-gov.com", "/dashboard/abc-123")
    assert parse_qs(parts.query) == {
        "from_ts": [str(int(start.timestamp() * 1000))],
        "to_ts": [str(int(end.timestamp() * 1000))],
        "live": ["false"],
    }
    assert link.endswith("to_ts=1795749630500&live=false")


def test_existing_window_replaced_and_template_variables_kept() -> None:
    url = "https://app.ddog-gov.com/dashboard/abc-123/cw?tpl_var_env=staging&from_ts=1&to_ts=2&live=true"
    q = parse_qs(urlsplit(dashboard_link(url, 100.0, 160.25)).query)
    assert q == {"tpl_var_env": ["staging"], "from_ts": ["100000"], "to_ts": ["160250"], "live": ["false"]}
    naive = dashboard_link(url, datetime(1970, 1, 1, 0, 1), datetime(1970, 1, 1, 0, 2))  # naive = UTC
    assert "from_ts=60000&to_ts=120000" in naive


def test_report_summary_and_stage_rows_link_the_dashboard(tmp_path: Path) -> None:
    import json

    from capacity.report.writer import write_report
    from tests.report.conftest import make_run

    run_dir = make_run(tmp_path, 120.0)
    manifest = json.loads((run_dir / "manifest.json").read_text(encoding="utf-8"))
    manifest["experiment"]["metrics"]["dashboard_url"] = "https://app.ddog-gov.com/dashboard/abc-123"
    (run_dir / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    write_report(run_dir)
    md = (run_dir / "summary.md").read_text(encoding="utf-8")
    html = (run_dir / "report.html").read_text(encoding="utf-8")
    run_link = next(line for line in md.splitlines() if line.startswith("Dashboard over the run:"))
    q = parse_qs(urlsplit(run_link.split("(", 1)[1].rstrip(")")).query)
    assert q["live"] == ["false"] and int(q["from_ts"][0]) == int(
        datetime(2026, 11, 27, 3, 0, tzinfo=UTC).timestamp() * 1000
    )
    assert int(q["to_ts"][0]) > int(q["from_ts"][0])
    stage_line = next(line for line in md.splitlines() if line.startswith("Each stage:"))
    assert stage_line.count("https://app.ddog-gov.com/dashboard/abc-123?from_ts=") == 5
    assert html.count('">graphs</a>') == 5 and "the run in Datadog</a>" in html
    assert "&amp;to_ts=" in html  # escaped inside the attribute
