"""Analysis: saturation, SLO capacity and knee with bootstrap intervals; queueing and USL fits.

Pure functions over the stage table and the per-second series (no I/O); the CLI and the search
command read and write files around them. Names are imported on first use (scipy is slow to
import and most CLI commands never need it).
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

# kneedle is light (numpy) and shares its name with a function: import it eagerly so the package
# attribute is the function, not the submodule
from capacity.analyze.kneedle import kneedle, piecewise_breakpoint

if TYPE_CHECKING:
    from capacity.analyze.run_analysis import RunAnalysis, analyse_run, analyse_scaling
    from capacity.analyze.usl import USL, UslFit

_WHERE = {
    "RunAnalysis": "run_analysis",
    "analyse_run": "run_analysis",
    "analyse_scaling": "run_analysis",
    "USL": "usl",
    "UslFit": "usl",
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


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'capacity.analyze' has no attribute {name!r}")
    return getattr(import_module(f"capacity.analyze.{module}"), name)


def __dir__() -> list[str]:
    """The loaded names and the lazy ones, so tab completion (Jupyter, IPython) lists them."""
    return sorted({*globals(), *_WHERE})
