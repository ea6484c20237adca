"""``--require-metrics``: a search refuses to start while a set guard would be blind.

Here, not in ``observe``, because which queries a guard reads is the judge's rule; ``observe`` only
says which queries answered.
"""

from __future__ import annotations

from capacity.core.errors import CapacityError
from capacity.judge.server_guards import blind_queries
from capacity.observe.queries import resolve_queries
from capacity.observe.source import MetricsSource
from capacity.plan.experiment import Experiment


def require_guard_metrics(source: MetricsSource, exp: Experiment) -> None:
    """``--require-metrics``: after the preflight, a set guard whose query returned no series (or has no
    query) is an error naming the queries, before any load is sent. A target that just started gets
    ``poll_deadline_s`` to publish its first points."""
    configured = resolve_queries(exp.metrics)
    blind = blind_queries(exp.guards, configured, source.empty_queries())
    if blind:
        empty = source.empty_queries(wait_s=exp.metrics.poll_deadline_s)
        blind = blind_queries(exp.guards, configured, empty)
    if blind:
        shown = ", ".join(f"{n} ({configured[n]!r})" if n in configured else f"{n} (no query)" for n in blind)
        raise CapacityError(f"--require-metrics: guard(s) blind, no series for metrics.queries {shown}")
