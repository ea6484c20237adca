"""Links from a verdict to the team's own Datadog dashboard over the run's or one stage's window.

Datadog dashboards take the time frame as ``from_ts``/``to_ts`` (epoch milliseconds) with
``live=false`` (a fixed window, not "the last N minutes"); the URL's other parameters (template
variables such as ``tpl_var_env``) are kept.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import pandas as pd

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


def _when(v: Any) -> datetime | None:
    if v is None or v == "" or (isinstance(v, float) and math.isnan(v)):
        return None
    try:
        t = pd.Timestamp(v)
    except (ValueError, TypeError):
        return None
    if t is pd.NaT:
        return None
    return (t.tz_localize("UTC") if t.tzinfo is None else t).to_pydatetime()


def run_dashboard(url: str | None, started_at: Any, ended_at: Any) -> str | None:
    """The dashboard over the whole run, or None without a URL or a known start and end."""
    start, end = _when(started_at), _when(ended_at)
    return dashboard_link(url, start, end) if url and start and end else None


def stage_dashboards(url: str | None, stages: pd.DataFrame) -> dict[int, str]:
    """Stage index -> the dashboard over that stage (its start, warm-up included, to its end)."""
    if not url or stages.empty or not {"index", "started_at", "ended_at"} <= set(stages.columns):
        return {}
    out: dict[int, str] = {}
    for _, r in stages.iterrows():
        link = run_dashboard(url, r["started_at"], r["ended_at"])
        if link:
            out[int(r["index"])] = link
    return out
