"""The metrics the Datadog agent's integrations emit: name -> integration, type, unit.

Shipped with the package (``capacity/data/agent_metrics/*.csv``, one per integration, recorded from
the integrations' public ``metadata.csv``: ``ecs_fargate``, ``puma``, ``redisdb``, ``sidekiq``). One
table for every reader: ``observe`` names custom metrics by it, the sandbox (and the tests' fake
Datadog) types and units its series by it.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import cache
from importlib import resources

INTEGRATIONS = ("ecs_fargate", "puma", "redisdb", "sidekiq")


@dataclass(frozen=True)
class AgentMetric:
    name: str
    integration: str
    kind: str
    """The metadata's ``metric_type``: gauge, count or rate."""
    unit: str
    """The metadata's ``unit_name`` (empty where it gives none)."""


@cache
def agent_metrics() -> dict[str, AgentMetric]:
    """Every metric of the four integrations, by name."""
    out: dict[str, AgentMetric] = {}
    folder = resources.files("capacity") / "data" / "agent_metrics"
    for integration in INTEGRATIONS:
        text = (folder / f"{integration}.csv").read_text(encoding="utf-8")
        for row in csv.DictReader(text.splitlines()):
            name = row["metric_name"].strip()
            out[name] = AgentMetric(name, integration, row["metric_type"].strip(), row["unit_name"].strip())
    return out
