"""The application's use cases: a capacity search, the nightly regression gate, late-metrics backfill.

Everything that drives the pipeline end to end lives here; the packages it calls (plan, load,
observe, judge, analyse, size, store, report) know nothing of each other's order. The CLI is a thin
layer over these functions; see docs/design.md.
"""

from capacity.search.backfill import BackfillReport, backfill_run
from capacity.search.nightly import NightlyOutcome, run_nightly
from capacity.search.options import SearchOptions
from capacity.search.run import SearchRun, run_search

__all__ = [
    "BackfillReport",
    "backfill_run",
    "NightlyOutcome",
    "SearchOptions",
    "SearchRun",
    "run_nightly",
    "run_search",
]
