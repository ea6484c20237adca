"""The application's use cases: a capacity search, soak, scaling series, the nightly gate, backfill.

Everything that drives the pipeline end to end lives here; the packages it calls (plan, load,
observe, judge, analyze, size, store, report) know nothing of each other's order. The CLI is a thin
layer over these functions; see docs/design.md.

The names below load on first use (PEP 562), so ``import capacity.search`` imports nothing that
imports ``ssl``: ``run_search`` patches gevent itself, and that must happen before ssl is loaded.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from capacity.search.backfill import BackfillReport, backfill_run
    from capacity.search.nightly import NightlyOutcome, run_nightly
    from capacity.search.options import SearchOptions
    from capacity.search.run import SearchRun, run_search

_HOMES = {
    "BackfillReport": "backfill",
    "backfill_run": "backfill",
    "NightlyOutcome": "nightly",
    "run_nightly": "nightly",
    "SearchOptions": "options",
    "SearchRun": "run",
    "run_search": "run",
}

__all__ = [
    "BackfillReport",
    "NightlyOutcome",
    "SearchOptions",
    "SearchRun",
    "backfill_run",
    "run_nightly",
    "run_search",
]


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'capacity.search' has no attribute {name!r}")
    return getattr(import_module(f"capacity.search.{home}"), name)


def __dir__() -> list[str]:
    """The loaded names and the lazy ones, so tab completion (Jupyter, IPython) lists them."""
    return sorted({*globals(), *_HOMES})
