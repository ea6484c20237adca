"""capacity: find where a service saturates, in controlled steps, and size production from it.

The pipeline (one package each): ``plan`` (experiment file, stage plan) -> ``load`` (open-model
arrivals on Locust) -> ``observe`` (Datadog metrics) -> ``judge`` (guards, stage verdicts) ->
``analyze`` (saturation, SLO capacity, knee) -> ``size`` (production recommendation) ->
``store`` (results folder) -> ``report`` (HTML, summary.md, compare); ``search`` runs them in order
(search, soak, failover, scale, the nightly gate) and ``cli`` is its command line.

The entry points load on first use (``capacity.load_run(...)`` imports pandas then, ``import capacity``
alone imports nothing): ``notebook`` (the notebook API), ``load_run``/``load_all`` (a run or the results
history as DataFrames), ``load_experiment`` (an experiment file) and ``run_search`` (a search).
"""

from importlib import import_module
from importlib.metadata import PackageNotFoundError, version
from typing import Any

try:
    __version__ = version("capacity")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0.0.0+unknown"

_ENTRY_POINTS = {
    "notebook": ("capacity.notebook", None),
    "load_run": ("capacity.notebook", "load"),
    "load_all": ("capacity.notebook", "load_all"),
    "load_experiment": ("capacity.plan.experiment", "load_experiment"),
    "run_search": ("capacity.search", "run_search"),
}
"""name -> (module, attribute): imported by name on first use (the root package stays import-free)."""

__all__ = ["__version__", *_ENTRY_POINTS]


def __getattr__(name: str) -> Any:
    where = _ENTRY_POINTS.get(name)
    if where is None:
        raise AttributeError(f"module 'capacity' has no attribute {name!r}")
    module = import_module(where[0])
    return module if where[1] is None else getattr(module, where[1])


def __dir__() -> list[str]:
    """The loaded names and the entry points, so tab completion lists them."""
    return sorted({*globals(), *_ENTRY_POINTS})
