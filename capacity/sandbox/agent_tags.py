"""The tags the Datadog agent puts on what it reports, at its tag cardinality (the sandboxes share this).

The ECS Fargate check's own series always carry the task (``task_arn``); integration-check metrics
(Puma, Redis) carry ``task_arn`` only at ``orchestrator`` cardinality (``DD_CHECKS_TAG_CARDINALITY``).
At ``low``, the agent's default, they keep the cluster and service tags only, so every task's series
collapse into one: the search warns about that (``capacity.observe.agent_checks``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

Cardinality = Literal["low", "orchestrator"]
ORCHESTRATOR_ONLY = ("task_arn",)
"""Tags the agent adds to check metrics only at orchestrator cardinality."""


def check_tags(task_tags: Iterable[str], cardinality: Cardinality) -> list[str]:
    """An integration check's tags for one task: the task's tags, without ``task_arn`` at low cardinality."""
    tags = list(task_tags)
    if cardinality == "orchestrator":
        return tags
    return [t for t in tags if t.partition(":")[0] not in ORCHESTRATOR_ONLY]
