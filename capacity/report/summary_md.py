"""``summary.md``: the few lines a person pastes into a ticket or chat, from the same content as the page."""

from __future__ import annotations

from capacity.report.content import ReportContent, recommendation_headline


def render_summary_md(c: ReportContent) -> str:
    lines = [
        f"# Capacity: {c.experiment}",
        "",
        f"Run `{c.run_id}` against {c.target}, started {c.started_at or 'unknown'}; "
        f"stopped: {c.stopped_reason}; {len(c.stages)} stage(s).",
        "",
        "| figure | req/s [interval] | signal |",
        "|---|---|---|",
    ]
    for e in c.estimates:
        lines.append(f"| {e.label} | {e.text()} | {e.signal or '-'} |")
    if c.bottlenecks:
        lines += ["", f"**Bottleneck:** {c.bottlenecks[0]}"]
        lines += [f"- later failing stage: {b}" for b in c.bottlenecks[1:]]
    lines += ["", f"**Production:** {recommendation_headline(c.recommendation)}"]
    chain = (c.recommendation or {}).get("chain") or []
    if chain:
        from capacity.report.content import chain_lines

        lines += ["", "How the count was reached:", ""] + [f"- {line}" for line in chain_lines(chain)]
    if c.dashboard:
        lines += ["", f"Dashboard over the run: [{c.experiment} in Datadog]({c.dashboard})"]
        stages = ", ".join(f"[{i}]({url})" for i, url in sorted(c.stage_dashboards.items()))
        if stages:
            lines.append(f"Each stage: {stages}")
    if c.truth:
        lines += ["", c.truth]
    for w in c.warnings:
        lines.append(f"\n> warning: {w}")
    lines += ["", "Full report: `report.html` in this folder.", ""]
    return "\n".join(lines)
