"""The self-contained ``report.html``: inline CSS, PNGs as base64 data URIs, no script, no network.

It must open from a mail attachment or an S3 bucket on a machine with no internet access, so
nothing on the page refers to anything outside the file.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Sequence
from html import escape
from typing import Any

import pandas as pd

from capacity.report.content import ReportContent, recommendation_headline, recommendation_rows

SECTIONS: tuple[tuple[str, str], ...] = (
    ("capacity", "Capacity"),
    ("recommendation", "Production sizing"),
    ("goodput", "Goodput vs offered rate"),
    ("latency", "Latency percentiles vs rate"),
    ("endpoints", "Per-endpoint latency"),
    ("flows", "Sessions per flow"),
    ("resources", "CPU, memory, pool and queue vs rate"),
    ("timeline", "Stage timeline"),
    ("search-path", "Search path"),
    ("stages", "Stages"),
    ("run", "Run"),
)
"""Section ids and titles, in page order (tests and links rely on the ids)."""

CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0 auto;max-width:1100px;
 padding:1rem 1.5rem;color:#212121;line-height:1.4}
h1{font-size:1.5rem;margin-bottom:.2rem}
h2{font-size:1.15rem;border-bottom:1px solid #e0e0e0;padding-bottom:.2rem;margin-top:2rem}
.meta{color:#616161;font-size:.9rem}
table{border-collapse:collapse;font-size:.85rem;margin:.5rem 0}
th,td{border:1px solid #e0e0e0;padding:.25rem .5rem;text-align:left;vertical-align:top}
th{background:#f5f5f5} td.num{text-align:right;font-variant-numeric:tabular-nums}
figure{margin:.5rem 0} img{max-width:100%;height:auto;border:1px solid #eeeeee}
.v-pass{color:#2e7d32;font-weight:600} .v-fail{color:#c62828;font-weight:600}
.v-other{color:#ef6c00;font-weight:600} .headline{font-size:1.1rem;font-weight:600}
.warn{background:#fff8e1;border-left:4px solid #ffb300;padding:.4rem .7rem}
nav a{margin-right:.8rem;font-size:.85rem} .lb{color:#ef6c00}
"""


def _e(v: Any) -> str:
    return escape("" if v is None else str(v))


def _num(v: Any, digits: int = 1) -> str:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return ""
    return "" if f != f else f"{f:.{digits}f}"  # NaN -> blank


def _verdict_class(v: str) -> str:
    return "v-pass" if v == "pass" else "v-fail" if v == "fail" else "v-other"


def _table(headers: Iterable[str], rows: Iterable[Iterable[str]], cls: str = "") -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(rows_cell for rows_cell in r) + "</tr>" for r in rows)
    return f'<table class="{cls}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _img(png: bytes, alt: str, name: str) -> str:
    data = base64.b64encode(png).decode("ascii")
    return f'<figure><img alt="{_e(alt)}" data-plot="{_e(name)}" src="data:image/png;base64,{data}"></figure>'


def _capacity(c: ReportContent) -> str:
    rows = []
    for e in c.estimates:
        lo_hi = f"{_num(e.lo)} – {_num(e.hi)}" if e.lo is not None and e.hi is not None else "—"
        status = "extrapolated" if e.extrapolated else "reached" if e.reached else "not reached (lower bound)"
        rows.append(
            [
                f"<td>{_e(e.label)}</td>",
                f'<td class="num" data-key="{_e(e.key)}">{_num(e.value) or "—"}</td>',
                f'<td class="num">{_e(lo_hi)}</td>',
                f"<td>{_e(e.signal) or '—'}</td>",
                f"<td>{_e(e.method)}</td>",
                f'<td class="{"" if e.reached else "lb"}">{_e(status)}</td>',
                f"<td>{_e(e.note)}</td>",
            ]
        )
    out = _table(["figure", "req/s", "interval", "signal that set it", "method", "status", "note"], rows, "figures")
    if c.truth:
        out += f"<p>{_e(c.truth)}</p>"
    if c.bottlenecks:
        out += f"<p><b>Bottleneck:</b> {_e(c.bottlenecks[0])}</p>"
        out += "".join(f"<p>later failing stage: {_e(b)}</p>" for b in c.bottlenecks[1:])
    if c.partial:
        out += '<p class="warn">This run has no summary.json (it did not finish): figures are missing.</p>'
    for w in c.warnings:
        out += f'<p class="warn">warning: {_e(w)}</p>'
    if c.notes:
        out += "<ul>" + "".join(f"<li>{_e(n)}</li>" for n in c.notes) + "</ul>"
    return out


def _chain_value(v: object) -> str:
    return f"{v:.4g}" if isinstance(v, float) else ("-" if v is None else str(v))


def _recommendation(c: ReportContent) -> str:
    out = f'<p class="headline">{_e(recommendation_headline(c.recommendation))}</p>'
    if c.recommendation:
        chain = c.recommendation.get("chain") or []
        if chain:
            steps = [
                [
                    f"<td>{_e(s['step'])}</td>",
                    f"<td>{_e(_chain_value(s.get('value')))}</td>",
                    f"<td>{_e(s['source'])}</td>",
                    f"<td>{'yes' if s.get('extrapolated') else ''}</td>",
                ]
                for s in chain
            ]
            out += _table(["step", "value", "source", "extrapolated"], steps, "recommendation-chain")
        rows = recommendation_rows({k: v for k, v in c.recommendation.items() if k != "chain"})
        top = [[f"<td>{_e(k)}</td>", f"<td>{_e(v)}</td>"] for k, v in rows if "." not in k]
        nested = [[f"<td>{_e(k)}</td>", f"<td>{_e(v)}</td>"] for k, v in rows if "." in k]
        out += _table(["item", "value"], top, "recommendation")
        if nested:  # inputs, working and scenarios: folded (no script needed for <details>)
            out += (
                f"<details><summary>inputs, working and scenarios ({len(nested)} items)</summary>"
                f"{_table(['input', 'value'], nested, 'recommendation-inputs')}</details>"
            )
    return out


def _search_path(c: ReportContent, png: bytes) -> str:
    rows = [
        [
            f'<td class="num">{i}</td>',
            f'<td class="num">{_num(p.get("rate"))}</td>',
            f"<td>{_e(p.get('probe'))}</td>",
            f"<td>{_e(p.get('why'))}</td>",
            f'<td class="{_verdict_class(str(p.get("verdict")))}">{_e(p.get("verdict"))}</td>',
            f"<td>{_e(p.get('reason'))}</td>",
        ]
        for i, p in enumerate(c.search_path)
    ]
    return _img(png, "search path: rates probed in order", "search-path") + _table(
        ["#", "rate (req/s)", "probe", "why this rate", "verdict", "first reason"], rows, "search-path"
    )


STAGE_COLUMNS: tuple[tuple[str, str, int], ...] = (
    ("target_rps", "target", 1),
    ("offered_rps", "offered", 1),
    ("achieved_rps", "goodput", 1),
    ("dropped", "dropped", 0),
    ("p50_ms", "p50 ms", 1),
    ("p95_ms", "p95 ms", 1),
    ("p99_ms", "p99 ms", 1),
    ("error_ratio", "errors", 4),
    ("unfinished", "unfinished", 0),
)
LOWER_BOUND_COLUMNS = ("p50_ms", "p95_ms", "p99_ms", "max_ms")
"""Shown as ``≥ value`` for a stage whose percentiles were censored by an abort."""
ENDPOINT_COLUMNS: tuple[tuple[str, str, int], ...] = (
    ("requests", "requests", 0),
    ("ok", "ok", 0),
    ("errors", "errors", 0),
    ("unfinished", "unfinished", 0),
    ("p50_ms", "p50 ms", 1),
    ("p95_ms", "p95 ms", 1),
    ("p99_ms", "p99 ms", 1),
)


def _true(v: Any) -> bool:
    return str(v).strip().lower() in ("true", "1", "1.0")


def _stage_cell(r: pd.Series, col: str, digits: int) -> str:
    text = _num(r.get(col), digits)
    if text and col in LOWER_BOUND_COLUMNS and _true(r.get("percentiles_censored")):
        text = f"≥ {text}"
    return f'<td class="num">{_e(text)}</td>'


def _verdict_text(r: pd.Series) -> str:
    verdict = str(r.get("verdict", ""))
    if _true(r.get("aborted_in_warmup")):
        return f"{verdict} (aborted in warm-up)"
    return f"{verdict} (aborted)" if _true(r.get("aborted_early")) else verdict


def _endpoints(c: ReportContent, png: bytes | None) -> str:
    if png is None or c.endpoints.empty:
        return "<p>No per-endpoint results in this run.</p>"
    rates = dict(zip(c.stages.get("index", []), c.stages.get("target_rps", []), strict=False))
    rows = [
        [
            f'<td class="num">{_e(r.get("stage"))}</td>',
            f'<td class="num">{_num(rates.get(r.get("stage")))}</td>',
            f"<td>{_e(r.get('endpoint'))}</td>",
            *[f'<td class="num">{_num(r.get(col), d)}</td>' for col, _, d in ENDPOINT_COLUMNS],
        ]
        for _, r in c.endpoints.sort_values(["stage", "endpoint"]).iterrows()
    ]
    headers = ["stage", "target", "endpoint", *[h for _, h, _ in ENDPOINT_COLUMNS]]
    return _img(png, "p95 per endpoint vs rate", "endpoints") + _table(headers, rows, "endpoints")


FLOW_COLUMNS: tuple[tuple[str, str, int], ...] = (
    ("planned_per_s", "planned /s", 2),
    ("started_per_s", "started /s", 2),
    ("started", "started", 0),
    ("completed", "completed", 0),
    ("failed", "failed", 0),
    ("unfinished", "unfinished", 0),
    ("dropped", "dropped", 0),
    ("p50_s", "p50 s", 2),
    ("p95_s", "p95 s", 2),
)


def _flows(c: ReportContent) -> str:
    """One row per stage and session flow: sessions started against plan, what they became, their duration."""
    if c.flows.empty:
        return "<p>No flow ran as sessions in this run.</p>"
    rates = dict(zip(c.stages.get("index", []), c.stages.get("target_rps", []), strict=False))
    rows = [
        [
            f'<td class="num">{_e(r.get("stage"))}</td>',
            f'<td class="num">{_num(rates.get(r.get("stage")))}</td>',
            f"<td>{_e(r.get('flow'))}</td>",
            *[f'<td class="num">{_num(r.get(col), d)}</td>' for col, _, d in FLOW_COLUMNS],
            f"<td>{_e(r.get('failed_at_step'))}</td>",
        ]
        for _, r in c.flows.sort_values(["stage", "flow"]).iterrows()
    ]
    headers = ["stage", "target", "flow", *[h for _, h, _ in FLOW_COLUMNS], "failed at step"]
    return _table(headers, rows, "flows")


def _link(url: str | None, text: str) -> str:
    return f'<a href="{_e(url)}">{_e(text)}</a>' if url else ""


def _stages(stages: pd.DataFrame, dashboards: dict[int, str]) -> str:
    if stages.empty:
        return "<p>No stage finished.</p>"
    mcols = [c for c in stages.columns if c.startswith("m_")]
    headers = [
        "stage",
        "probe",
        *[h for _, h, _ in STAGE_COLUMNS],
        *[c.removeprefix("m_") for c in mcols],
        "verdict",
        "reasons",
        *(["dashboard"] if dashboards else []),
    ]
    rows = []
    for _, r in stages.sort_values("index").iterrows():
        verdict = str(r.get("verdict", ""))
        rows.append(
            [
                f'<td class="num">{_e(r.get("index"))}</td>',
                f"<td>{_e(r.get('probe', ''))}</td>",
                *[_stage_cell(r, col, d) for col, _, d in STAGE_COLUMNS],
                *[f'<td class="num">{_num(r.get(col), 2)}</td>' for col in mcols],
                f'<td class="{_verdict_class(verdict)}">{_e(_verdict_text(r))}</td>',
                f"<td>{_e(r.get('reasons', ''))}</td>",
                *([f"<td>{_link(dashboards.get(int(r['index'])), 'graphs')}</td>"] if dashboards else []),
            ]
        )
    return _table(headers, rows, "stages")


def _run(c: ReportContent) -> str:
    m = c.manifest
    versions = ", ".join(f"{k} {v}" for k, v in (m.get("versions") or {}).items())
    items = [
        ("run id", c.run_id),
        ("experiment", c.experiment),
        ("experiment file", m.get("experiment_file")),
        ("target", c.target),
        ("started", c.started_at),
        ("ended", c.ended_at),
        ("stopped because", c.stopped_reason),
        ("host", m.get("host")),
        ("git revision", m.get("git_revision")),
        ("versions", versions),
        ("command", m.get("command")),
    ]
    rows = [[f"<th>{_e(k)}</th>", f"<td>{_e(v)}</td>"] for k, v in items]
    if c.dashboard:
        rows.append(["<th>dashboard</th>", f"<td>{_link(c.dashboard, 'the run in Datadog')}</td>"])
    return _table(["", ""], rows, "run")


def render_html(c: ReportContent, plots: dict[str, bytes], extra: Sequence[tuple[str, str, str]] = ()) -> str:
    """The whole page. ``plots`` maps goodput/latency/resources/timeline/search-path to PNG bytes;
    ``extra`` sections (id, title, HTML: a soak's drift) come first."""
    body = {
        "capacity": _capacity(c),
        "recommendation": _recommendation(c),
        "goodput": _img(plots["goodput"], "goodput vs offered rate", "goodput"),
        "latency": _img(plots["latency"], "latency percentiles vs rate", "latency"),
        "endpoints": _endpoints(c, plots.get("endpoints")),
        "flows": _flows(c),
        "resources": _img(plots["resources"], "CPU, memory, pool and queue vs rate", "resources"),
        "timeline": _img(plots["timeline"], "per-second timeline coloured by stage verdict", "timeline"),
        "search-path": _search_path(c, plots["search-path"]),
        "stages": _stages(c.stages, c.stage_dashboards),
        "run": _run(c),
    }
    body.update({sid: part for sid, _, part in extra})
    order = [*((sid, title) for sid, title, _ in extra), *SECTIONS]
    nav = "".join(f'<a href="#{sid}">{_e(title)}</a>' for sid, title in order)
    sections = "".join(f'<section id="{sid}"><h2>{_e(title)}</h2>{body[sid]}</section>' for sid, title in order)
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>capacity report: {_e(c.experiment)} ({_e(c.run_id)})</title>"
        f"<style>{CSS}</style></head><body>"
        f"<header><h1>Capacity report: {_e(c.experiment)}</h1>"
        f'<p class="meta">run {_e(c.run_id)} against {_e(c.target)}; started {_e(c.started_at)}; '
        f"stopped: {_e(c.stopped_reason)}</p><nav>{nav}</nav></header>"
        f"<main>{sections}</main></body></html>\n"
    )
