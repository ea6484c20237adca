"""Live terminal progress for a search: one table, refreshed each second (quiet with ``--json``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich import box
from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from capacity.core.models import SecondSample, StageResult
from capacity.core.outcomes import Cause, Verdict

_VERDICT_STYLE = {"pass": "green", "fail": "red", "interrupted": "yellow"}
COLUMNS: tuple[tuple[str, str], ...] = (
    ("#", "right"),
    ("probe", "left"),
    ("target", "right"),
    ("offered", "right"),
    ("goodput", "right"),
    ("p95 ms", "right"),
    ("err", "right"),
    ("drop", "right"),
)
"""Short headers, no vertical rules: the table fits an 80-column terminal with room for the verdict."""


def _fmt(v: float | None, spec: str = ".0f") -> str:
    return "-" if v is None else format(v, spec)


def _rate(v: float | None) -> str:
    """One decimal below 1000 req/s, none above (the column stays 6 wide up to 99999)."""
    return _fmt(v, ".1f" if v is not None and v < 1000 else ".0f")


def short_verdict(r: StageResult) -> str:
    """``fail: p95 812``: the verdict and the breach that set it, read from the stage's breach records
    (a generator-bound stage shows its generator breach; the full reasons are in the results)."""
    blind = f" (blind: {', '.join(r.blind)})" if r.blind else ""
    generator = r.verdict.cause is Cause.GENERATOR
    if not (r.verdict is Verdict.FAIL or generator) or not r.breaches:
        return r.verdict + blind
    wanted = [b for b in r.breaches if b.generator] if generator else []
    return f"{r.verdict}: {(wanted or r.breaches)[0].short}{blind}"


def slowest_endpoint(r: StageResult) -> str:
    """`` · slowest NAME 812``: the endpoint with the highest p95, unless the verdict already names it."""
    stats = r.endpoints.get(r.worst_endpoint) if r.worst_endpoint else None
    if stats is None or stats.p95_ms is None or any(b.scope == r.worst_endpoint for b in r.breaches[:1]):
        return ""
    return f" · slowest {r.worst_endpoint} {stats.p95_ms:.0f}"


class Progress:
    """Finished stages as rows, the running stage as a live row; silent when ``enabled`` is False."""

    def __init__(self, console: Console | None, *, enabled: bool = True, title: str = "") -> None:
        self.enabled = enabled and console is not None
        self.console = console
        self.title = title
        self.rows: list[StageResult] = []
        self.current: tuple[int, float, str, Sequence[SecondSample]] | None = None
        self.status = ""
        self._live: Live | None = None

    def __enter__(self) -> Progress:
        if self.enabled and self.console is not None:
            self._live = Live(self._render(), console=self.console, auto_refresh=False, transient=False)
            self._live.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._live is not None:
            self.current = None
            self._live.update(self._render(), refresh=True)
            self._live.__exit__(*exc)
            self._live = None

    def note(self, status: str) -> None:
        self.status = status
        self._refresh()

    def tick(self, index: int, target: float, probe: str, samples: Sequence[SecondSample]) -> None:
        self.current = (index, target, probe, samples)
        self._refresh()

    def stage_done(self, result: StageResult) -> None:
        self.rows.append(result)
        self.current = None
        self._refresh()

    def _refresh(self) -> None:
        if self._live is not None:
            self._live.update(self._render(), refresh=True)

    def _render(self) -> Group:
        table = Table(
            title=f"{self.title} (rates in req/s)" if self.title else None,
            expand=False,
            box=box.SIMPLE_HEAD,
            show_edge=False,
            pad_edge=False,
            padding=(0, 1, 0, 0),
        )
        for col, justify in COLUMNS:
            table.add_column(col, justify=justify, no_wrap=True, min_width=len(col))  # type: ignore[arg-type]
        table.add_column("verdict", overflow="fold", min_width=15)  # folded, never cut
        for r in self.rows:
            style = _VERDICT_STYLE.get(r.verdict, "magenta")
            table.add_row(
                str(r.index),
                r.probe,
                _rate(r.target_rps),
                _rate(r.offered_rps),
                _rate(r.achieved_rps),
                _fmt(r.p95_ms),
                f"{r.error_ratio:.1%}",
                str(r.dropped),
                Text(short_verdict(r) + slowest_endpoint(r), style=style),
            )
        if self.current is not None:
            index, target, probe, samples = self.current
            last = list(samples)[-3:]
            n = max(1, len(last))
            offered = sum(s.offered for s in last) / n
            ok = sum(s.ok for s in last) / n
            done = sum(s.ok + s.errors for s in last)
            errs = sum(s.errors for s in last)
            p95 = last[-1].p95_ms if last else None
            phase = last[-1].phase if last else "warmup"
            table.add_row(
                str(index),
                probe,
                _rate(target),
                _rate(offered),
                _rate(ok),
                _fmt(p95),
                f"{(errs / done if done else 0):.1%}",
                str(sum(s.dropped for s in samples)),
                Text(f"running ({phase}, {len(samples)} s)", style="cyan"),
            )
        return Group(table, Text(self.status, style="dim")) if self.status else Group(table)
