"""Analysis: saturation, SLO capacity and knee with bootstrap intervals; queueing and USL fits.

Pure functions over the stage table and the per-second series (no I/O); the CLI and the search
command read and write files around them.
"""

from capacity.analyse.kneedle import kneed_knee, kneedle, piecewise_breakpoint
from capacity.analyse.run_analysis import RunAnalysis, analyse_run, analyse_scaling
from capacity.analyse.usl import USL, UslFit

__all__ = [
    "USL",
    "RunAnalysis",
    "UslFit",
    "analyse_run",
    "analyse_scaling",
    "kneed_knee",
    "kneedle",
    "piecewise_breakpoint",
]
