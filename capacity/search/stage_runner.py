"""One stage, start to end: drive it, observe the server, judge it, store it.

Search, soak and failover run their stages through one ``StageRunner``: the window guards that abort
a stage live, the server metrics over the window load was offered, the verdict (``judge/verdict.py``)
and the stage's files. What comes next (the stop rules, recovery, the next rate) is the run's.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from capacity.core.breach import Breach
from capacity.core.measurement import StageMeasurement, StageSpec
from capacity.core.models import SecondSample, StageResult
from capacity.judge.guards import judge_window
from capacity.judge.verdict import NO_SERVER_SIDE, ServerSide, judge_measurement
from capacity.plan.strategies import Probe
from capacity.search.finish import RunState
from capacity.search.progress import Progress
from capacity.search.setup import RunParts

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger("capacity.search")


@dataclass
class Observed:
    """A stage's server side as judged (``server``) and as stored (the raw ``frame``)."""

    server: ServerSide = NO_SERVER_SIDE
    frame: pd.DataFrame | None = None
    warnings: list[str] = field(default_factory=list)


class StageRunner:
    """Runs stages for one run: ``parts`` (driver, metrics, store), the run's ``state`` and ``progress``.

    ``metrics_wait``: wait for each stage's server metrics to be complete (back-to-back segments do not:
    they read the metrics as they are, and the catch-up fills the rest)."""

    def __init__(self, parts: RunParts, state: RunState, progress: Progress, *, metrics_wait: bool = True) -> None:
        self.parts, self.state, self.progress = parts, state, progress
        self.metrics_wait = metrics_wait

    def run(self, spec: StageSpec, probe: Probe) -> StageResult:
        """Drive one stage (aborting it on a sustained breach), observe the server, judge and store it."""
        parts, progress = self.parts, self.progress
        guards = parts.exp.guards
        live: list[Breach] = []

        def on_second(samples: list[SecondSample]) -> str | None:
            progress.tick(spec.index, spec.target_rps, probe.kind, samples)
            breaches = judge_window(samples, guards)
            if breaches:
                live.extend(breaches)
                log.warning("stage %d aborted: %s", spec.index, "; ".join(b.text for b in breaches))
                return breaches[0].code
            return None

        log.info("stage %d: %.2f req/s (%s: %s)", spec.index, spec.target_rps, probe.kind, probe.why)
        meas = parts.driver.run_stage(spec, on_second)
        seen = self.observe(meas)
        self.state.warnings.extend([*seen.warnings, *meas.warnings])
        check = parts.opts.stage_check
        drift = check(meas.measure_from, meas.ended_at, seen.frame) if check and not meas.interrupted else None
        result = judge_measurement(meas, guards, probe=probe.kind, live_breaches=live, server=seen.server, drift=drift)
        if result.breaches:
            self.state.first_breach[result.index] = result.breaches[0].code
        parts.store.write_stage(result, list(meas.seconds), seen.frame, _encode_histogram(meas))
        progress.stage_done(result)
        log.info("stage %d: %s %s", spec.index, result.verdict, "; ".join(result.reasons))
        return result

    def observe(self, meas: StageMeasurement) -> Observed:
        """Server metrics over the window load was offered (after arrivals stop, the pool idles and a
        trailing snapshot would pull the stage's utilisation down)."""
        source, guards = self.parts.source, self.parts.exp.guards
        if source is None or meas.interrupted:
            return Observed()
        from capacity.judge.server_guards import blind_queries, metric_guard_breaches
        from capacity.observe.source import StageWindow

        index = meas.spec.index
        self.progress.note(f"stage {index}: fetching server metrics")
        window_end = meas.load_ended_at or meas.ended_at
        window_start = meas.measure_from if meas.requests > 0 and meas.measure_from < window_end else meas.started_at
        sm = source.fetch_stage(StageWindow(stage=index, start=window_start, end=window_end), wait=self.metrics_wait)
        warnings = [f"stage {index}: {w}" for w in sm.warnings]
        notes = [f"metrics missing: {', '.join(sorted(sm.missing))}"] if sm.missing else []
        blind = blind_queries(guards, sm.completeness, sm.missing, sm.pending)
        if blind:
            warnings.append(f"stage {index}: blind guard(s), no data for: {', '.join(blind)}")
        self.progress.note("")
        server = ServerSide(
            metrics=dict(sm.aggregates),
            completeness=dict(sm.completeness),
            breaches=metric_guard_breaches(sm.aggregates, guards),
            notes=notes,
            blind=blind,
        )
        return Observed(server, sm.frame, warnings)


def _encode_histogram(meas: StageMeasurement) -> str | None:
    try:
        enc = meas.histogram.encode()
    except Exception:  # an empty histogram cannot always be encoded
        return None
    return enc.decode() if isinstance(enc, bytes) else str(enc)
