"""The metrics the Datadog agent's integrations emit: name -> integration, type, unit.

Shipped with the package (``capacity/data/agent_metrics/*.csv``, one per integration, recorded from
the integrations' public ``metadata.csv``: ``ecs_fargate``, ``puma``, ``redisdb``, ``sidekiq``).
The table itself is ``capacity.core.agent_metrics``. A metric not listed is a *custom* metric:
someone must publish it, and ``capacity metrics check`` says so per query, so a guard that reads
one is not mistaken for an agent default.
"""

from __future__ import annotations

from capacity.core.agent_metrics import INTEGRATIONS, AgentMetric, agent_metrics

__all__ = ["INTEGRATIONS", "AgentMetric", "agent_metrics", "describe"]


def describe(metric: str | None) -> str:
    """``ecs_fargate gauge, byte`` for an agent metric; ``custom`` for anything else."""
    found = agent_metrics().get(metric or "")
    if found is None:
        return "custom (not an agent integration metric)"
    return f"{found.integration} {found.kind}, {found.unit or 'no unit'}"
