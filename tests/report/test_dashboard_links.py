"""The team's dashboard linked over a window: from_ts/to_ts in ms, live=false, other parameters kept."""

from __future__ import annotations

from datetime import UTC, datetime
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
