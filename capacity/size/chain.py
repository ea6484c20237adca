"""The chain: how a task count was reached, one step a line, each with its source (docs/design.md).

demand -> per-task capacity -> tasks by throughput, by CPU, by memory -> binding rule -> zones -> N+1
(-> Sidekiq tasks). A step whose value lies past the largest staging size measured says so.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from capacity.core.models import Estimate
from capacity.plan.experiment import Production
from capacity.size.rules import Step, past


@dataclass(frozen=True)
class ChainInputs:
    """What the linear chain shows beside the sized figures of ``_size_one``."""

    peak_source: str
    signal: str
    estimate: Estimate
    staging_tasks: int
    cpu_per_task: float | None
    cpu_line: tuple[float, float] | None
    mem_mib: int | None
    mem_source: str
    bracket: tuple[float, float] | None = None
    """The search's bracket on the capacity: (highest passing rate, lowest failing rate)."""
    stages: str = ""
    """Which stages set the capacity ('between stage 7 (pass, ...) and stage 8 (fail, ...)')."""


def _capacity_source(c: ChainInputs) -> str:
    e = c.estimate
    iv = f" [{e.lo:.4g}, {e.hi:.4g}]" if e.lo is not None and e.hi is not None else " (no interval)"
    set_by = f", set by {e.signal}" if e.signal else ""
    set_by += f" {c.stages}" if c.stages else ""
    bound = "" if e.reached else "; not reached: a lower bound, so the count errs high"
    held = f"; {e.note}" if e.note else ""
    return f"{c.signal} {e.value:.4g} req/s{iv}{set_by} / {c.staging_tasks} staging app tasks{bound}{held}"


def _cpu_step(main: dict[str, Any], c: ChainInputs, production: Production) -> Step:
    raw = main["raw_tasks_cpu"]
    if raw is None or c.cpu_per_task is None or c.cpu_line is None:
        return Step("tasks by CPU", None, "not applied: no CPU per stage (or CPU does not rise with load)")
    b, m = c.cpu_line
    return Step(
        "tasks by CPU",
        raw,
        f"demand / {c.cpu_per_task:.4g} req/s per task, where CPU reaches cpu_target {production.cpu_target:.0%} "
        f"(CPU % = {b:.3g} + {m:.3g} x staging goodput, unsaturated stages){past(raw, c.staging_tasks)}",
        raw > c.staging_tasks,
    )


def n_plus_one_step(main: dict[str, Any], production: Production, largest: int) -> Step:
    tasks, zoned = main["app_tasks"], main["zoned_tasks"]
    far = past(tasks, largest)
    if not production.n_plus_one:
        return Step("N+1", tasks, f"off (production.n_plus_one = false){far}", tasks > largest)
    need = math.ceil(main["raw_tasks"] - 1e-9)
    if tasks == zoned:
        how = f"the zone rounding already leaves a spare beyond {need} task(s)"
    else:
        how = f"one spare beyond {need} task(s), rounded up to a multiple of {production.zones} zones"
    return Step("N+1", tasks, how + far, tasks > largest)


def linear_chain(main: dict[str, Any], c: ChainInputs, production: Production) -> list[Step]:
    """The chain of a recommendation sized from one staging size (search, size, one-size scale)."""
    n = c.staging_tasks
    raw_tp = main["raw_tasks_capacity"]
    rule = "cpu" if main["binding_constraint"] == "cpu" else "throughput"
    return [
        Step(
            "demand",
            main["demand_rps"],
            f"peak {main['peak_rps']:.4g} req/s ({c.peak_source}) x (1 + unmodelled_share "
            f"{production.unmodelled_share:g}) x growth {production.growth:g}",
        ),
        Step("per-task capacity", (c.estimate.value or 0.0) / n, _capacity_source(c)),
        Step(
            "tasks by throughput",
            raw_tp,
            f"demand x (1 + throughput_headroom {production.throughput_headroom:g}) / per-task capacity"
            f"{past(raw_tp, n)}",
            raw_tp > n,
        ),
        _cpu_step(main, c, production),
        Step(
            "tasks by memory",
            c.mem_mib,
            f"MiB per task: {c.mem_source}; memory sets the task size, not the count",
        ),
        Step("binding rule", rule, f"the larger of throughput {raw_tp:.3g} and CPU {_f(main['raw_tasks_cpu'])} tasks"),
        Step(
            "zones",
            main["zoned_tasks"],
            f"ceil({main['raw_tasks']:.3g}), at least min_tasks {production.min_tasks}, up to a multiple of "
            f"{production.zones} zones{past(main['zoned_tasks'], n)}",
            main["zoned_tasks"] > n,
        ),
        n_plus_one_step(main, production, n),
        Step("sidekiq tasks", main["sidekiq_tasks"], str(main["sidekiq_method"])),
    ]


def _f(v: float | None) -> str:
    return f"{v:.3g}" if v is not None else "n/a"
