"""``capacity search`` holds the staging task count still, exactly as ``capacity scale`` does.

With ``[cluster] ecs_cluster`` and ``ecs_service`` set (and a real target), the search suspends the
service's autoscaling, sets its desired count to ``[cluster] app_tasks`` and waits until it is
steady, confirms the count from the metrics (app tasks reporting), watches it during every stage
(the ECS API and the tasks reporting CPU) and restores count and autoscaling afterwards, whatever
ended the run. A stage during which the count changes is ``invalid: task drift``: its capacity
would be divided by the wrong number of tasks and undersize production.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import datetime
from typing import Any

from rich.console import Console

from capacity.core.models import RunSummary
from capacity.plan.experiment import Experiment
from capacity.search.options import SearchOptions
from capacity.search.run import run_search
from capacity.search.scale_control import EcsControl, confirm_from_metrics, metrics_drift

log = logging.getLogger("capacity.search")


def holds_task_count(exp: Experiment) -> bool:
    """True when the experiment names an ECS service whose count the search must hold."""
    return bool(exp.cluster.ecs_cluster and exp.cluster.ecs_service) and not exp.target.is_sandbox


def run_held_search(exp: Experiment, options: SearchOptions, console: Console | None = None) -> RunSummary:
    """``run_search``, with the ECS service's task count held and watched when ``[cluster]`` names one."""
    if not holds_task_count(exp):
        return run_search(exp, options=options, console=console)
    from capacity.search.scale import control_for, metrics_source

    control = control_for(exp)
    assert isinstance(control, EcsControl)
    n = exp.cluster.app_tasks
    problems: list[str] = []
    try:
        control.prepare()
        control.set_size(n, lambda: False)
        source = metrics_source(exp)
        if source is not None:
            try:
                note = confirm_from_metrics(source, n, timeout_s=exp.metrics.poll_deadline_s + 30.0, stop=lambda: False)
            finally:
                source.close()
            if note:
                problems.append(note)

        def stage_check(start: datetime, end: datetime, frame: Any) -> str | None:
            return control.drift(n, start, end) or metrics_drift(n, frame)

        summary = run_search(exp, options=replace(options, stage_check=stage_check), console=console)
    finally:
        problems += control.restore()
        for p in problems:
            log.warning("task count: %s", p)
    return summary.model_copy(update={"warnings": [*summary.warnings, *problems]})
