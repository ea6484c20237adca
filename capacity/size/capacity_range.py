"""The capacity interval a task count's range is drawn over (docs/design.md, "Analysis and sizing").

The SLO capacity's bootstrap interval covers the spread within stages. The search's resolution is a
second uncertainty it does not see: the true capacity lies anywhere between the highest passing
stage and the lowest failing one (never above the saturation throughput held). The range covers both.
"""

from __future__ import annotations

import numpy as np

from capacity.analyze.table import StageTable
from capacity.core.models import Estimate


def range_interval(est: Estimate, bracket: tuple[float, float] | None) -> tuple[float | None, float | None, str]:
    """The capacity interval the range is drawn over: the estimate's, widened to the search's bracket.

    The bootstrap interval covers the spread within stages; the search's resolution (the gap between
    the highest passing and the lowest failing stage) is a second uncertainty it does not see."""
    lo, hi = est.lo, est.hi
    how = f"{est.signal or 'capacity'} interval [{_g(lo)}, {_g(hi)}] req/s"
    if bracket is None or est.value is None:
        return lo, hi, how
    b_lo, b_hi = bracket
    lo = min(x for x in (lo, b_lo, est.value) if x is not None)
    hi = max(x for x in (hi, b_hi, est.value) if x is not None)
    return (
        lo,
        hi,
        how + f" widened to the search's bracket [{b_lo:.4g}, {b_hi:.4g}] req/s (highest pass, lowest failure)",
    )


def _g(v: float | None) -> str:
    return f"{v:.4g}" if v is not None else "-"


def bracket_of(table: StageTable, est: Estimate, signal: str, saturation: Estimate) -> tuple[float, float] | None:
    """(highest passing rate below the lowest failing one, that failing rate) around a reached SLO capacity;
    the top is held at the measured saturation throughput (no more is known to be carried)."""
    if signal != "slo_capacity" or est.value is None or not est.reached or "verdict" not in table.frame:
        return None
    rate = table.rate
    verdicts = [str(v) for v in table.frame["verdict"]]
    failed = np.array([v == "fail" for v in verdicts])
    passed = np.array([v == "pass" for v in verdicts])
    if not failed.any():
        return None
    lowest_fail = float(np.min(rate[failed]))
    below = passed & (rate < lowest_fail)
    if not below.any():
        return None
    top = lowest_fail
    if saturation.value is not None and saturation.reached and not saturation.extrapolated:
        top = min(top, saturation.value)
    return min(float(np.max(rate[below])), est.value), max(top, est.value)


def bracket_stages(table: StageTable, bracket: tuple[float, float] | None) -> str:
    """'between stage 7 (pass, 155.4 req/s) and stage 8 (fail, 163.8 req/s)': the stages that set the capacity."""
    if bracket is None or "index" not in table.frame:
        return ""
    rate, frame = table.rate, table.frame
    failed = np.array([str(v) == "fail" for v in frame["verdict"]])
    passed = np.array([str(v) == "pass" for v in frame["verdict"]]) & (rate < float(np.min(rate[failed])))
    p, f = int(np.argmax(np.where(passed, rate, -np.inf))), int(np.argmin(np.where(failed, rate, np.inf)))
    return (
        f"between stage {int(frame['index'].iloc[p])} (pass, {rate[p]:.4g} req/s) and stage "
        f"{int(frame['index'].iloc[f])} (fail, {rate[f]:.4g} req/s)"
    )
