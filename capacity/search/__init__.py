"""The application's use cases: a capacity search, soak, scaling series, the nightly gate, backfill.

Everything that drives the pipeline end to end lives here; the packages it calls (plan, load,
observe, judge, analyze, size, store, report) know nothing of each other's order. The CLI is a thin
layer over these functions; see docs/design.md.

The names below load on first use (PEP 562), so ``import capacity.search`` imports nothing that
imports ``ssl``: ``run_search`` patches gevent itself, and that must happen before ssl is loaded.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from capacity.core.lazy import lazy_names

if TYPE_CHECKING:
    from capacity.search.backfill import BackfillReport, backfill_run
    from capacity.search.nightly import NightlyOutcome, run_nightly
    from capacity.search.options import SearchOptions
    from capacity.search.run import SearchRun, run_search

_HOMES = {
    "BackfillReport": "capacity.search.backfill",
    "backfill_run": "capacity.search.backfill",
    "NightlyOutcome": "capacity.search.nightly",
    "run_nightly": "capacity.search.nightly",
    "SearchOptions": "capacity.search.options",
    "SearchRun": "capacity.search.run",
    "run_search": "capacity.search.run",
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


__getattr__, __dir__ = lazy_names(__name__, _HOMES, globals())
