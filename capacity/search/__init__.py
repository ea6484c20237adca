"""The search loop: stage after stage until the edge shows, then analysis, sizing and the report."""

from capacity.search.runner import SearchOptions, run_search

__all__ = ["SearchOptions", "run_search"]
