"""What a person reads at the end of a search: the figures, which signal set each, and the truth when known."""

from __future__ import annotations

from rich.console import Console

from capacity.analyze.bottleneck import bottleneck_text
from capacity.core.models import Estimate, RunSummary
from capacity.report.estimate_text import format_estimate, truth_line


def _est(label: str, e: Estimate | None, value: float | None) -> str:
    """One figure's line: the summary's value with its estimate's interval, marks and signal."""
    if e is None and value is not None:
        e = Estimate(value=value)
    elif e is not None and value is not None:
        e = e.model_copy(update={"value": value})
    text = format_estimate(e, unit=" req/s", signal=True, missing="not determined", why_missing=True)
    return f"{label}: {text}"


def print_outcome(console: Console, summary: RunSummary) -> None:
    est = summary.estimates
    console.print()
    console.print(f"[bold]stopped:[/] {summary.stopped_text}   stages: {len(summary.stages)}")
    console.print(_est("saturation throughput", est.get("saturation"), summary.saturation_rps))
    console.print(_est("SLO capacity", est.get("slo_capacity"), summary.slo_capacity_rps))
    console.print(_est("knee", est.get("knee"), summary.knee_rps))
    if summary.bottleneck is not None:
        console.print(f"[bold]bottleneck:[/] {bottleneck_text(summary.bottleneck)}")
    line = truth_line(summary)
    if line:
        console.print(f"[cyan]{line}[/]")
    rec = summary.recommendation
    if rec:
        from capacity.report.content import chain_lines, recommendation_headline

        console.print(f"[bold]production:[/] {recommendation_headline(rec)}", highlight=False)
        for line in chain_lines(rec.get("chain") or []):
            console.print(f"  {line}", highlight=False, markup=False)
    for w in summary.warnings:
        console.print(f"[yellow]warning:[/] {w}")
    console.print(f"results: {summary.results_dir}")
