"""What a person reads at the end of a failover run: the loss, the per-period table, the verdict."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

from capacity.analyze.failover import PERIODS

ROWS: tuple[tuple[str, str, str], ...] = (
    ("goodput_rps", "goodput req/s", "{:.1f}"),
    ("offered_rps", "offered req/s", "{:.1f}"),
    ("p95_ms", "p95 ms", "{:.0f}"),
    ("p99_ms", "p99 ms", "{:.0f}"),
    ("error_ratio", "error ratio", "{:.2%}"),
    ("dropped", "dropped", "{:d}"),
    ("cpu_pct_max_task", "CPU % (busiest task)", "{:.0f}"),
    ("pool_free_min", "free pool (lowest)", "{:.1f}"),
    ("backlog_max", "backlog (max)", "{:.0f}"),
    ("queue_size_max", "job queue (max)", "{:.0f}"),
    ("seconds", "seconds", "{:d}"),
)


def _cell(value: Any, fmt: str) -> str:
    if value is None:
        return "-"
    try:
        return fmt.format(int(value) if "d" in fmt else float(value))
    except (TypeError, ValueError):
        return str(value)


def period_table(record: dict[str, Any]) -> Table:
    """Before / during / after, one row per figure (``period_detail`` of ``failover.json``)."""
    detail = record.get("period_detail") or {}
    table = Table(title="failover periods", show_edge=False)
    table.add_column("figure")
    for p in PERIODS:
        span = detail.get(p)
        table.add_column(f"{p}" + (f" ({span['from_s']:+.0f}..{span['to_s']:+.0f} s)" if span else ""), justify="right")
    for key, label, fmt in ROWS:
        table.add_row(label, *(_cell((detail.get(p) or {}).get(key), fmt) for p in PERIODS))
    return table


def loss_line(record: dict[str, Any]) -> str:
    lost, back = record.get("lost_tasks") or [], record.get("replaced_after_s")
    if not lost:
        return "no task was stopped"
    came = f"back at its desired count after {back:.1f} s" if back is not None else "NOT back within the deadline"
    return f"stopped {len(lost)} app task(s), {record.get('surviving_tasks')} left; the service was {came}"


def per_task_line(record: dict[str, Any]) -> str | None:
    pt = record.get("per_task") or {}
    rate = pt.get("offered_rps_per_task")
    if rate is None:
        return None
    line = f"each surviving task carried {rate:.1f} req/s during the loss"
    if pt.get("capacity_rps_per_task") is not None:
        line += f" against a measured per-task capacity of {pt['capacity_rps_per_task']:.1f}"
        line += f" ({pt.get('capacity_source')})"
    if pt.get("sandbox_formula_rps_per_task") is not None:
        line += f"; sandbox formula {pt['sandbox_formula_rps_per_task']:.1f} req/s per task"
    return line


def print_failover(console: Console, record: dict[str, Any], warnings: list[str], results_dir: str) -> None:
    console.print()
    console.print(loss_line(record))
    console.print(period_table(record))
    if line := per_task_line(record):
        console.print(line)
    for w in warnings:
        console.print(f"[yellow]warning:[/] {w}")
    fb = record.get("first_breach")
    if fb:
        at = fb.get("at_s_after_loss")
        when = f" at {at:+.1f} s after the loss" if at is not None else ""
        console.print(f"[red]first breach:[/] {fb['code']}{when}")
    style = "green" if record.get("verdict") == "pass" else "red"
    console.print(f"[bold {style}]failover {record.get('verdict')}[/]   results: {results_dir}")
