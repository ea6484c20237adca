"""capacity: find where a service saturates, in controlled steps, and size production from it.

The pipeline (one package each): ``plan`` (experiment file, stage plan) -> ``load`` (open-model
arrivals on Locust) -> ``observe`` (Datadog metrics) -> ``judge`` (guards, stage verdicts) ->
``analyze`` (saturation, SLO capacity, knee) -> ``size`` (production recommendation) ->
``store`` (results folder) -> ``report`` (HTML, summary.md, compare); ``search`` runs them in order
(search, soak, failover, scale, the nightly gate) and ``cli`` is its command line. ``core`` holds the
contracts they all share (the run, stage and summary models, measurements, breaches, outcomes).

The entry points load on first use (``capacity.load_run(...)`` imports pandas then, ``import capacity``
alone imports nothing): ``notebook`` (the notebook API), ``load_run``/``load_all`` (a run or the results
history as DataFrames), ``load_experiment`` (an experiment file) and ``run_search`` (a search).
"""

from importlib.metadata import PackageNotFoundError, version

from capacity.core.lazy import lazy_names

try:
    __version__ = version("capacity")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0.0.0+unknown"

_ENTRY_POINTS = {
    "notebook": "capacity.notebook",
    "load_run": "capacity.notebook:load",
    "load_all": "capacity.notebook",
    "load_experiment": "capacity.plan.experiment",
    "run_search": "capacity.search",
}
"""name -> where it lives: imported on first use (the root package stays import-free)."""

__all__ = ["__version__", *_ENTRY_POINTS]


__getattr__, __dir__ = lazy_names(__name__, _ENTRY_POINTS, globals())
