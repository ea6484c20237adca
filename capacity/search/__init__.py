"""The search loop: stage after stage until the edge shows, then analysis, sizing and the report.

Importing this package imports Locust first: gevent must patch the standard library before anything
(the Datadog client, aiohttp) imports ssl. Import ``capacity.search`` before those in scripts.
"""

import capacity.load  # noqa: F401  (first: gevent patching before ssl is imported)
from capacity.search.runner import SearchOptions, run_search

__all__ = ["SearchOptions", "run_search"]
