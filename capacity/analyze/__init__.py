"""Analysis: saturation, SLO capacity and knee with bootstrap intervals; queueing and USL fits.

Pure functions over the stage table and the per-second series (no I/O); the CLI and the search
command read and write files around them. Names are imported on first use (scipy is slow to
import and most CLI commands never need it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

# kneedle is light (numpy) and shares its name with a function: import it eagerly so the package
# attribute is the function, not the submodule
from capacity.analyze.kneedle import kneedle, piecewise_breakpoint
from capacity.core.lazy import lazy_names

if TYPE_CHECKING:
    from capacity.analyze.run_analysis import RunAnalysis, analyse_run, analyse_scaling
    from capacity.analyze.usl import USL, UslFit

_WHERE = {
    "RunAnalysis": "capacity.analyze.run_analysis",
    "analyse_run": "capacity.analyze.run_analysis",
    "analyse_scaling": "capacity.analyze.run_analysis",
    "USL": "capacity.analyze.usl",
    "UslFit": "capacity.analyze.usl",
}

__all__ = [
    "USL",
    "RunAnalysis",
    "UslFit",
    "analyse_run",
    "analyse_scaling",
    "kneedle",
    "piecewise_breakpoint",
]


__getattr__, __dir__ = lazy_names(__name__, _WHERE, globals())
