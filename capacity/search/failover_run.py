"""The failover run: hold the peak rate, lose a task (or a zone's share), and judge what the rest do.

The recommendation adds a task for N+1 and rounds up per zone: it promises the SLO holds while a
task is gone. A failover run measures that promise as a segmented run (``staged_run.SegmentedRun``, as
the soak: one flat open-model rate cut into stored segments, the search's guards live and per segment,
the results folder, events, Ctrl-C): after the steady segments it stops the tasks ``--lose`` allows (a segment
boundary, so the load never pauses for it), watches the service until it is back at its desired
count (the scheduler replaces the task; nothing here restores anything), holds on until a segment
has run whole again, and judges: ``pass`` when every segment held, else ``fail`` naming the first
breach and when it came relative to the loss (docs/design.md, failover).
"""

from __future__ import annotations

import logging
import math
import time
from contextlib import ExitStack
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rich.console import Console

from capacity.core.errors import CapacityError, ExperimentError
from capacity.core.outcomes import StopReason
from capacity.plan.experiment import Experiment
from capacity.search.failover_control import EcsTaskControl, LossWatch, SandboxTasks, TaskControl
from capacity.search.failover_plan import FailoverPlan, allowed_losses, choose_victims
from capacity.search.finish import report_or_warn, summary_of
from capacity.search.options import SearchOptions
from capacity.search.setup import RunParts, open_run
from capacity.search.soak_plan import Segment
from capacity.search.staged_run import SegmentedRun

if TYPE_CHECKING:
    from capacity.cluster.ecs_tasks import ServiceTask

log = logging.getLogger("capacity.failover")

EXIT_PASS, EXIT_FAIL, EXIT_INTERRUPTED = 0, 1, 130


def failover_experiment(exp: Experiment, plan: FailoverPlan) -> Experiment:
    """The experiment as the run holds it: a flat ``[soak]`` of ``plan.segment_s`` segments."""
    warmup = min(exp.soak.warmup_seconds, plan.segment_s / 2)
    return exp.with_changes(
        label="capacity failover", soak={"shape": "flat", "segment_seconds": plan.segment_s, "warmup_seconds": warmup}
    )


def control_for(exp: Experiment, plan: FailoverPlan) -> TaskControl | None:
    """The ECS service in ``[cluster]``, or ``None`` for the built-in sandbox (its control needs its URL)."""
    c = exp.cluster
    if exp.target.is_sandbox:
        if c.ecs_service:
            raise ExperimentError(
                "[cluster] ecs_service is set but target.base_url is sandbox:// (whose tasks the run stops itself)",
                file=exp.source_file,
                key="cluster.ecs_service",
            )
        return None
    if plan.replace_after_s is not None:
        raise ExperimentError("--replacement-delay applies to the built-in sandbox only (ECS replaces its own tasks)")
    for key, value in (("ecs_cluster", c.ecs_cluster), ("ecs_service", c.ecs_service)):
        if not value:
            raise ExperimentError(
                "capacity failover needs [cluster] ecs_cluster and ecs_service to stop a task of a real target",
                file=exp.source_file,
                key=f"cluster.{key}",
            )
    from capacity.cluster.ecs_tasks import EcsServiceTasks

    return EcsTaskControl(EcsServiceTasks(c.ecs_cluster, c.ecs_service, region=c.region or None))


def planned_victims(exp: Experiment, plan: FailoverPlan, control: TaskControl | None) -> tuple[list[ServiceTask], int]:
    """The tasks the run would stop now, of how many serving (the sandbox's are named when it starts);
    refusals raise."""
    from capacity.cluster.ecs_tasks import ServiceTask

    n = exp.sandbox.app_tasks
    tasks = [ServiceTask(f"sandbox app task {i + 1} of {n}") for i in range(n)] if control is None else control.tasks()
    return choose_victims(tasks, plan.lose, exp.production.zones), sum(t.serving for t in tasks)


def dry_run_plan(exp: Experiment, plan: FailoverPlan, control: TaskControl | None) -> dict[str, Any]:
    """``--dry-run``: the tasks that would be stopped, the calls, the worst-case duration; stops nothing."""
    victims, serving = planned_victims(exp, plan, control)
    calls = (control or SandboxTasks("sandbox://", plan.replace_after_s)).planned_calls([v.arn for v in victims])
    return {
        "experiment": exp.name,
        "control": control.kind if control is not None else "sandbox",
        "plan": plan.as_dict(),
        "serving_tasks": serving,
        "would_stop": [{"task": v.arn, "zone": v.zone} for v in victims],
        "allowed": allowed_losses(serving, plan.lose, exp.production.zones),
        "zones": exp.production.zones,
        "calls": calls,
        "worst_case_s": plan.worst_case_s,
        "restores": "nothing: the service scheduler replaces a stopped task; the run waits for it and reports",
    }


@dataclass
class FailoverOutcome:
    """A finished failover run: ``record`` is ``failover.json``; ``contract()`` the ``--json`` object."""

    record: dict[str, Any]
    stopped_reason: str

    @property
    def verdict(self) -> str:
        return str(self.record["verdict"])

    def contract(self) -> dict[str, Any]:
        keys = ("verdict", "lost_tasks", "replaced_after_s", "periods", "first_breach")
        return {k: self.record[k] for k in keys}

    @property
    def exit_code(self) -> int:
        if self.stopped_reason == StopReason.INTERRUPTED:
            return EXIT_INTERRUPTED
        return EXIT_PASS if self.verdict == "pass" else EXIT_FAIL


def run_failover(
    exp: Experiment,
    plan: FailoverPlan,
    *,
    options: SearchOptions | None = None,
    console: Console | None = None,
    control: TaskControl | None = None,
) -> FailoverOutcome:
    """Run a failover end to end; refusals (too many tasks, a service not steady) come before any load."""
    from capacity.load.patching import patch_gevent

    patch_gevent()
    opts = options or SearchOptions()
    console = console if console is not None else Console(stderr=True)
    exp = failover_experiment(exp, plan)
    control = control if control is not None else control_for(exp, plan)
    planned_victims(exp, plan, control)  # refuse before the run folder exists
    n = math.ceil(plan.worst_case_s / plan.segment_s - 1e-9)
    segments = [Segment(k, k * plan.segment_s, (k + 1) * plan.segment_s, ((0.0, plan.rate_rps),)) for k in range(n)]
    with ExitStack() as stack:
        parts = open_run(exp, opts, stack)
        parts.store.update_manifest(kind="failover", failover=plan.as_dict())
        control = control if control is not None else SandboxTasks(parts.base_url, plan.replace_after_s)
        return FailoverRun(parts, console, plan, segments, control).run()
    raise AssertionError("unreachable")  # pragma: no cover


class FailoverRun(SegmentedRun[FailoverOutcome]):
    """A failover in progress: flat segments, with the loss before ``plan.loss_segment``."""

    probe_kind = "failover"
    catches_up = False
    """The verdict reads the client side; late metrics would change nothing it says."""

    def __init__(
        self, parts: RunParts, console: Console, plan: FailoverPlan, segments: list[Segment], control: TaskControl
    ) -> None:
        title = f"{parts.exp.name}: failover at {plan.why}, --lose {plan.lose}"
        super().__init__(parts, console, segments, title=title)
        self.failover_plan, self.control = plan, control
        self.watch: LossWatch | None = None
        self.lost: list[ServiceTask] = []
        self.surviving = 0
        self.not_replaced = False
        self.seg_started: dict[int, float] = {}

    def announce(self) -> None:
        p = self.failover_plan
        if self.show:
            self.console.print(
                f"[bold]capacity failover[/] {self.exp.name} -> {self.base_url} at {p.why}; --lose {p.lose} at "
                f"{p.loss_segment * p.segment_s:g} s of {p.duration_s:g} s  (results: {self.store.path})"
            )
        self.events.post("failover start", f"capacity failover {self.exp.name}: {p.why}, --lose {p.lose}", [])

    def before_segment(self, seg: Segment) -> bool:
        """The loss comes at its segment's boundary; the run ends once it has held long enough after it."""
        if seg.index == self.failover_plan.loss_segment:
            self.lose_tasks()
        if self.enough(seg.index):
            return False
        self.seg_started[seg.index] = time.time()
        return True

    def after_segments(self) -> None:
        self.wait_for_replacement()

    def release(self) -> None:
        if self.watch is not None:
            self.watch.end()

    def announce_result(self, outcome: FailoverOutcome) -> None:
        self.events.post("failover result", f"failover {outcome.verdict}", [f"verdict:{outcome.verdict}"])

    def enough(self, index: int) -> bool:
        """Before segment ``index``: has the run held the plan and one whole segment since the service was back?"""
        w = self.watch
        if w is None:
            return False
        if w.back_at is None:
            if time.time() - w.lost_at > self.failover_plan.deadline_s:
                self.not_replaced = True
                return True
            return False
        after = any(t >= w.back_at for i, t in self.seg_started.items() if i < index)
        return index >= self.failover_plan.planned_segments and after

    def lose_tasks(self) -> None:
        """Stop the tasks ``--lose`` allows, only from a steady service; then watch it come back."""
        plan, ctl = self.failover_plan, self.control
        desired, tasks = ctl.desired(), ctl.tasks()
        serving = [t for t in tasks if t.serving]
        if len(serving) != desired:
            raise CapacityError(
                f"the service is not steady before the loss ({len(serving)} serving app tasks, desired {desired}); "
                "refusing to stop a task"
            )
        victims = choose_victims(tasks, plan.lose, self.exp.production.zones)
        allowed = allowed_losses(len(serving), plan.lose, self.exp.production.zones)
        if len(victims) > allowed:  # choose_victims refuses already: this is the last line of defence
            raise CapacityError(f"--lose {plan.lose} allows {allowed} app task(s), not {len(victims)}; refusing")
        lost_at = time.time()
        for v in victims:
            ctl.stop(v.arn)
            self.lost.append(v)
            log.info("failover: stopped app task %s (zone %s)", v.arn, v.zone)
        self.surviving = len(serving) - len(victims)
        self.watch = LossWatch(ctl, desired, tuple(v.arn for v in victims), lost_at, poll_s=_poll_s(plan))
        self.watch.start()
        self.events.post("failover loss", f"stopped {len(victims)} of {len(serving)} app tasks", ["failover:loss"])
        self.progress.note(f"lost {len(victims)} of {len(serving)} app tasks")

    def wait_for_replacement(self) -> None:
        """After a breach the load stops, but the replacement time is still worth knowing: wait for it."""
        w = self.watch
        # a stage's own handler may have seen the interrupt before the flag was read here
        interrupted = bool(self.flag) or self.state.stopped_reason == StopReason.INTERRUPTED
        if w is None or w.back_at is not None or self.not_replaced or interrupted:
            return
        self.progress.note("waiting for the service to be back at its desired count")
        if not w.wait_back(w.lost_at + self.failover_plan.deadline_s, lambda: bool(self.flag)) and not self.flag:
            self.not_replaced = True

    def finish(self, *, show: bool) -> FailoverOutcome:
        """Summary, periods and verdict (``failover.json``), report; runs on every exit path."""
        summary = summary_of(self.exp, self.store, self.state, target=self.base_url, started=self.started)
        self.store.write_summary(summary)
        from capacity.search.failover_record import failover_record

        record = failover_record(self, summary.stopped_reason)
        self.store.write_json("failover.json", record)
        self.store.finish()
        if self.opts.write_report:
            report_or_warn(self.store)
        outcome = FailoverOutcome(record, summary.stopped_reason)
        if show:
            from capacity.search.failover_outcome import print_failover

            print_failover(self.console, record, summary.warnings, summary.results_dir)
        return outcome


def _poll_s(plan: FailoverPlan) -> float:
    """Watch often enough to time a short replacement, without hammering the API on a long one."""
    return min(2.0, max(0.25, plan.segment_s / 10))
