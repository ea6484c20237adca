"""capacity: find where a service saturates, in controlled steps, and size production from it.

The pipeline (one package each): ``plan`` (experiment file, stage plan) -> ``load`` (open-model
arrivals on Locust) -> ``observe`` (Datadog metrics) -> ``judge`` (guards, stage verdicts) ->
``analyse`` (saturation, SLO capacity, knee) -> ``size`` (production recommendation) ->
``store`` (results folder) -> ``report`` (HTML, compare, nightly) and ``cli``.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("capacity")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
