"""One way to write a capacity figure as text, for the CLI, the report, the listings and the search's last lines.

A figure measured by the run reads ``120.0 [114.0, 126.0]``; one the run never reached is a lower
bound, ``> 120.0 (lower bound)``; one extrapolated by a fit (the queueing estimate of saturation) is
``150.0 (extrapolated)``, never written as a bound; a missing one is ``-`` (or what the caller asks).
"""

from __future__ import annotations

from typing import Protocol

from capacity.core.models import RunSummary


class EstimateLike(Protocol):
    """What the formatter reads: ``capacity.core.models.Estimate`` or a report figure with the same fields."""

    @property
    def value(self) -> float | None: ...
    @property
    def lo(self) -> float | None: ...
    @property
    def hi(self) -> float | None: ...
    @property
    def reached(self) -> bool: ...
    @property
    def extrapolated(self) -> bool: ...
    @property
    def signal(self) -> str: ...
    @property
    def note(self) -> str: ...


def format_estimate(
    estimate: EstimateLike | None,
    *,
    unit: str = "",
    digits: int = 1,
    signal: bool = False,
    missing: str = "-",
    why_missing: bool = False,
) -> str:
    """``value[unit] [lo, hi]`` with the lower-bound / extrapolated mark and, with ``signal``, what set it.

    ``unit`` is appended to the value as given (e.g. ``" req/s"``); ``why_missing`` adds the
    estimate's note in parentheses after ``missing`` when there is no value.
    """
    if estimate is None or estimate.value is None:
        note = estimate.note if estimate is not None else ""
        return f"{missing} ({note})" if why_missing and note else missing
    lower_bound = not estimate.reached and not estimate.extrapolated
    text = f"{'> ' if lower_bound else ''}{estimate.value:.{digits}f}{unit}"
    if estimate.lo is not None and estimate.hi is not None:
        text += f" [{estimate.lo:.{digits}f}, {estimate.hi:.{digits}f}]"
    if estimate.extrapolated:
        text += " (extrapolated)"
    elif lower_bound:
        text += " (lower bound)"
    if signal and estimate.signal:
        text += f" set by {estimate.signal}"
    return text


def truth_line(summary: RunSummary) -> str | None:
    """For sandbox runs: how the measured saturation compares with the sandbox's formula."""
    t = summary.truth or {}
    formula = t.get("pool_rps")
    if formula is None:
        return None
    line = f"sandbox formula (app_tasks x threads / mean service): {float(formula):.1f} req/s"
    if summary.saturation_rps is not None:
        err = (summary.saturation_rps - float(formula)) / float(formula)
        line += f"; measured saturation {summary.saturation_rps:.1f} req/s ({err:+.1%})"
    return line
