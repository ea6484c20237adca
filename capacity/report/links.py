"""Links from a verdict to the team's own Datadog dashboard over the run's or one stage's window.

Datadog dashboards take the time frame as ``from_ts``/``to_ts`` (epoch milliseconds) with
``live=false`` (a fixed window, not "the last N minutes"); the URL's other parameters (template
variables such as ``tpl_var_env``) are kept.
"""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

WINDOW_PARAMS = ("from_ts", "to_ts", "live")


def _ms(t: datetime | float) -> int:
    if isinstance(t, datetime):
        t = (t if t.tzinfo else t.replace(tzinfo=UTC)).timestamp()
    return round(float(t) * 1000)


def dashboard_link(url: str, start: datetime | float, end: datetime | float) -> str:
    """``url`` showing ``[start, end]`` (datetimes, naive read as UTC, or epoch seconds)."""
    parts = urlsplit(url)
    kept = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in WINDOW_PARAMS]
    window = [("from_ts", str(_ms(start))), ("to_ts", str(_ms(end))), ("live", "false")]
    return urlunsplit(parts._replace(query=urlencode(kept + window)))
