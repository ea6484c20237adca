"""``write_report(run_dir)``: the report files of one run folder (report.html, summary.md, plots/)."""

from __future__ import annotations

from pathlib import Path

from capacity.report.content import ReportContent, gather
from capacity.report.html_page import render_html
from capacity.report.summary_md import render_summary_md
from capacity.store import LoadedRun, atomic_write_text, load_run


def render_plots(c: ReportContent) -> dict[str, bytes]:
    """Every figure of the report as PNG bytes, keyed by its section id."""
    from capacity.report import plots as P  # matplotlib is only imported when a report is drawn

    est = c.estimates_json()
    figures = {
        "goodput": P.goodput_figure(c.stages, est),
        "latency": P.latency_figure(c.stages, est, c.guards.get("slo_p95_ms")),
        "resources": P.resources_figure(c.stages, c.guards),
        "timeline": P.timeline_figure(c.seconds, c.stages),
        "search-path": P.search_path_figure(c.search_path),
    }
    if not c.endpoints.empty:  # runs recorded before per-endpoint results simply have no such plot
        figures["endpoints"] = P.endpoint_figure(c.endpoints, c.stages, c.guards.get("slo_p95_ms"))
    return {name: P.png_bytes(fig) for name, fig in figures.items()}


def write_report(run_dir: str | Path) -> Path:
    """Write ``report.html``, ``summary.md`` and ``plots/*.png`` into the run folder; return the HTML path.

    Raises ``CapacityError`` when ``run_dir`` is not a run folder.
    """
    return write_run_report(load_run(run_dir))


def write_run_report(run: LoadedRun) -> Path:
    """``write_report`` for a run already loaded (the CLI reports the damaged files it read around)."""
    content = gather(run)
    pngs = render_plots(content)
    from capacity.report.soak_plots import soak_report  # matplotlib, like render_plots

    soak_pngs, extra = soak_report(run)
    pngs.update(soak_pngs)
    from capacity.report.failover_plots import failover_report

    failover_pngs, failover_extra = failover_report(run)
    pngs.update(failover_pngs)
    extra = [*failover_extra, *extra]
    plots_dir = run.path / "plots"
    plots_dir.mkdir(exist_ok=True)
    for name, png in pngs.items():
        tmp = plots_dir / f".{name}.png.tmp"
        tmp.write_bytes(png)
        tmp.replace(plots_dir / f"{name}.png")
    html_path = run.path / "report.html"
    atomic_write_text(html_path, render_html(content, pngs, extra))
    atomic_write_text(run.path / "summary.md", render_summary_md(content))
    return html_path
