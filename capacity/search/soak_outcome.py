"""What a person reads at the end of a soak: each drift, flat or growing, how long to its limit."""

from __future__ import annotations

from typing import Any

from rich.console import Console

from capacity.analyze.drift import LABELS


def _g(v: Any) -> str:
    return "n/a" if v is None else f"{float(v):.4g}"


def drift_lines(record: dict[str, Any]) -> list[str]:
    """One line per drift (``soak.json``'s figures), then the sandbox's set slope when there is one."""
    lines = []
    limits, ttl = record.get("limits") or {}, record.get("time_to_limit_h") or {}
    for name, d in (record.get("drift") or {}).items():
        label, unit, limit_name = LABELS[name]
        line = f"{label}: {_g(d['value'])} {unit} [{_g(d['lo'])}, {_g(d['hi'])}] {d['verdict']}"
        line += f" (threshold {_g((record.get('thresholds') or {}).get(name))})"
        if name == "mem_mib_per_hour":
            per_k = (record.get("detail") or {}).get("mem_mib_per_1000_requests")
            if per_k:
                line += f"; {_g(per_k['value'])} MiB per 1000 requests [{_g(per_k['lo'])}, {_g(per_k['hi'])}]"
        if ttl.get(name) is not None:
            line += f"; reaches {limit_name} ({_g(limits.get(name))}) in {ttl[name]:.2f} h"
        lines.append(line)
    sb = record.get("sandbox_set")
    if sb and sb.get("mem_growth_kb"):
        lines.append(
            f"sandbox set: {_g(sb['mem_mib_per_1000_requests'])} MiB per 1000 requests "
            f"(= {_g(sb['mem_mib_per_hour'])} MiB/h per task at the rate served)"
        )
    return lines


def print_soak(console: Console, outcome: Any, record: dict[str, Any]) -> None:
    summary = outcome.summary
    console.print()
    console.print(f"[bold]stopped:[/] {summary.stopped_reason}   segments: {len(summary.stages)}")
    for line in drift_lines(record):
        console.print(line)
    for reason in record.get("reasons") or []:
        console.print(f"[red]threshold crossed:[/] {reason}")
    for w in summary.warnings:
        console.print(f"[yellow]warning:[/] {w}")
    style = "green" if outcome.verdict == "pass" else "red"
    console.print(f"[bold {style}]soak {outcome.verdict}[/]   results: {summary.results_dir}")
