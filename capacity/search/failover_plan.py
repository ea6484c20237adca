"""What a failover run holds and stops: its rate, its timeline, which tasks it may stop, and the
per-task capacity the search measured (docs/design.md, failover).

Pure functions and values; the run (``failover_run.py``) and the CLI read them, ``--dry-run`` prints them.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from typing import Any, Literal

from capacity.cluster.ecs_tasks import ServiceTask
from capacity.core.errors import CapacityError, ExperimentError

Lose = Literal["1", "zone"]
LOSE_CHOICES: tuple[str, ...] = ("1", "zone")


def parse_lose(text: str) -> Lose:
    if text not in LOSE_CHOICES:
        raise ExperimentError(f"--lose {text!r}: expected 1 (one app task) or zone (1/zones of them)")
    return "1" if text == "1" else "zone"


def allowed_losses(running: int, lose: Lose, zones: int) -> int:
    """How many tasks ``--lose`` allows stopping out of ``running``: one, or a zone's share (ceil(n / zones))."""
    return 1 if lose == "1" else max(1, math.ceil(running / max(1, zones)))


def choose_victims(tasks: list[ServiceTask], lose: Lose, zones: int) -> list[ServiceTask]:
    """The tasks to stop, or ``CapacityError`` when the flag's allowance would not cover them.

    ``zone`` takes every task of the zone holding the most (when the API names zones), else the first
    ceil(n / zones); it refuses when that zone holds more than its share or every task would go.
    """
    serving = [t for t in tasks if t.serving]
    if len(serving) < 2:
        raise CapacityError(
            f"the service has {len(serving)} serving app task(s): losing one leaves nothing to fail over to"
        )
    allowed = allowed_losses(len(serving), lose, zones)
    if lose == "1":
        victims = serving[:1]
    elif all(t.zone for t in serving):
        zone, _ = Counter(t.zone for t in serving).most_common(1)[0]
        victims = [t for t in serving if t.zone == zone]
    else:
        victims = serving[:allowed]
    if len(victims) > allowed:
        raise CapacityError(
            f"--lose {lose}: zone {victims[0].zone} holds {len(victims)} of {len(serving)} app tasks, more than "
            f"--lose {lose} allows ({allowed} = ceil({len(serving)} / {zones} zones)); refusing to stop them"
        )
    if len(victims) >= len(serving):
        raise CapacityError(
            f"--lose {lose}: would stop all {len(serving)} app tasks ([production] zones = {zones}); refusing"
        )
    return victims


@dataclass(frozen=True)
class FailoverPlan:
    """The run as it will go: a flat rate, the loss at a segment boundary, then the wait for the replacement."""

    rate_rps: float
    why: str
    duration_s: float
    loss_at_s: float
    segment_s: float
    lose: Lose = "1"
    deadline_s: float = 300.0
    """How long after the loss the service may take to be back at its desired count."""
    replace_after_s: float | None = None
    """The built-in sandbox only: how long its stopped task takes to be replaced."""
    per_task_capacity_rps: float | None = None
    """The per-task SLO capacity a search measured (``--from RUN``), drawn against the surviving tasks' load."""
    per_task_source: str = ""

    def __post_init__(self) -> None:
        if not self.segment_s > 0:
            raise ExperimentError(f"--segment-seconds must be > 0, got {self.segment_s:g}")
        if not 0 < self.loss_at_s < self.duration_s:
            raise ExperimentError(
                f"--loss-at {self.loss_at_s:g} s must fall inside --duration {self.duration_s:g} s "
                "(after a steady period)"
            )
        if self.loss_segment < 1 or self.loss_segment * self.segment_s >= self.duration_s:
            raise ExperimentError(
                f"--loss-at {self.loss_at_s:g} s with {self.segment_s:g}-s segments leaves no segment before or "
                f"after the loss in --duration {self.duration_s:g} s"
            )

    @property
    def loss_segment(self) -> int:
        """The loss happens just before this segment starts (a boundary: the load never pauses for it)."""
        return round(self.loss_at_s / self.segment_s)

    @property
    def planned_segments(self) -> int:
        return max(self.loss_segment + 1, math.ceil(self.duration_s / self.segment_s - 1e-9))

    @property
    def worst_case_s(self) -> float:
        """Longest the run holds load: the duration, or the deadline for the replacement and one segment after."""
        planned = self.planned_segments * self.segment_s
        return max(planned, self.loss_segment * self.segment_s + self.deadline_s + self.segment_s)

    def as_dict(self) -> dict[str, Any]:
        return {
            "rate_rps": self.rate_rps,
            "why": self.why,
            "duration_s": self.duration_s,
            "loss_at_s": self.loss_segment * self.segment_s,
            "segment_s": self.segment_s,
            "lose": self.lose,
            "deadline_s": self.deadline_s,
            "replace_after_s": self.replace_after_s,
            "worst_case_s": self.worst_case_s,
            "per_task_capacity_rps": self.per_task_capacity_rps,
            "per_task_source": self.per_task_source,
        }


def per_task_capacity(summary: dict[str, Any] | None) -> tuple[float | None, str]:
    """The per-task SLO capacity a search measured, from its ``summary.json``, and where it came from.

    Today ``recommendation.per_task_rps`` (the capacity signal / staging app tasks), else the inputs
    it is made of; the one place to adapt when the recommendation's shape changes (it keeps its keys).
    """
    rec = (summary or {}).get("recommendation") or {}
    inputs, figures = rec.get("inputs") or {}, rec.get("figures") or {}
    value = rec.get("per_task_rps")
    how = str(figures.get("per_task_rps_formula") or "recommendation.per_task_rps")
    if value is None and inputs.get("capacity_rps") and inputs.get("staging_app_tasks"):
        rps, tasks = float(inputs["capacity_rps"]), int(inputs["staging_app_tasks"])
        value = rps / tasks
        how = f"{inputs.get('capacity_signal', 'capacity')} {rps:.4g} rps / {tasks} tasks"
    if value is None or not float(value) > 0:
        return None, "no per-task capacity in the run's recommendation"
    return float(value), how
