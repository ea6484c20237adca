"""What a soak holds: its base rate (given, a run's recommendation, or a multiple of the profile), its
length, and the segments it is cut into (docs/design.md, soak)."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

from capacity.core.errors import CapacityError, ExperimentError
from capacity.core.measurement import StageSpec
from capacity.load.schedule import shape_of
from capacity.plan.experiment import Experiment
from capacity.plan.soak import Point, slice_points

DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h)\s*$")
UNIT_S = {"s": 1.0, "m": 60.0, "h": 3600.0}
MULTIPLE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*x\s*$")


def parse_duration(text: str, flag: str = "--duration") -> float:
    """``90s``, ``30m``, ``2h`` (or a decimal: ``1.5h``) -> seconds; anything else is bad input."""
    m = DURATION.match(text)
    if not m or float(m.group(1)) <= 0:
        raise ExperimentError(f"{flag} {text!r}: expected a positive duration like 90s, 30m or 2h")
    return float(m.group(1)) * UNIT_S[m.group(2)]


@dataclass(frozen=True)
class Segment:
    """One stored part of the soak: ``[start_s, end_s)`` of the soak and its rate points, from 0."""

    index: int
    start_s: float
    end_s: float
    points: tuple[Point, ...]

    @property
    def seconds(self) -> float:
        return self.end_s - self.start_s

    @property
    def peak_rps(self) -> float:
        return max(r for _, r in self.points)


@dataclass(frozen=True)
class SoakPlan:
    """The soak as it will run: base rate (None when ``[soak] points`` set the rate), length, why this rate."""

    base_rps: float | None
    duration_s: float
    why: str

    def segments(self, exp: Experiment) -> list[Segment]:
        """Equal segments of ``[soak] segment_seconds`` (the last one shorter), each a slice of one shape."""
        soak = exp.soak
        try:
            points = soak.rate_points(self.base_rps, self.duration_s)
        except ValueError as exc:
            raise ExperimentError(str(exc), file=exp.source_file, key="soak") from None
        n = max(1, math.ceil(self.duration_s / soak.segment_seconds - 1e-9))
        out = []
        for k in range(n):
            start, end = k * soak.segment_seconds, min((k + 1) * soak.segment_seconds, self.duration_s)
            seg = tuple(slice_points(points, start, end))
            if not any(r > 0 for _, r in seg):
                raise ExperimentError(f"soak segment {k} ({start:g}-{end:g} s) has no load", key="soak.points")
            out.append(Segment(k, start, end, seg))
        return out


def segment_spec(exp: Experiment, seg: Segment, max_inflight: int) -> StageSpec:
    """The stage a segment runs as: its flat rate or its shape, the warm-up on the first segment only."""
    soak = exp.soak
    rate, shape = (seg.peak_rps, ()) if soak.shape == "flat" else shape_of(seg.points, seg.seconds)
    warmup = min(soak.warmup_seconds, seg.seconds / 2) if seg.index == 0 else 0.0
    return StageSpec(
        index=seg.index,
        target_rps=rate,
        duration_s=seg.seconds,
        warmup_s=warmup,
        arrival=soak.arrival,
        shape=shape,
        max_inflight=max_inflight,
        seed=exp.stages.seed + seg.index,
    )


def soak_rate(exp: Experiment, *, rps: float | None, at: str | None, from_run: Path | None) -> tuple[float | None, str]:
    """The base rate and where it came from: ``--rps``, ``--at recommended`` (with ``--from RUN``) or ``--at Nx``.

    ``recommended`` holds staging at the load one production task carries at peak at the recommended
    size, times staging's app tasks: peak x growth x staging tasks / recommended tasks.
    """
    points = exp.soak.shape == "points"
    if sum(x is not None for x in (rps, at)) != (0 if points else 1):
        if points:
            raise ExperimentError("[soak] points set the rate: give neither --rps nor --at")
        raise ExperimentError("give one of --rps R, --at recommended (with --from RUN) or --at 1x")
    if points:
        return None, "[soak] points"
    if rps is not None:
        if not rps > 0:
            raise ExperimentError(f"--rps must be > 0, got {rps:g}")
        return rps, f"--rps {rps:g}"
    assert at is not None
    if at == "recommended":
        return _recommended(exp, from_run)
    m = MULTIPLE.match(at)
    if not m or float(m.group(1)) <= 0:
        raise ExperimentError(f"--at {at!r}: expected 'recommended' or a multiple of the profile like 1x")
    from capacity.size.recommend import default_peak_rps

    peak, where = default_peak_rps(exp.production, exp.workload)
    if peak is None:
        raise ExperimentError(f"--at {at}: no profile (set production.peak_rpm or endpoint rpm)")
    k = float(m.group(1))
    return peak * k, f"{k:g}x the profile ({where}: {peak:.4g} req/s)"


def _recommended(exp: Experiment, from_run: Path | None) -> tuple[float, str]:
    from capacity.store import load_run

    if from_run is None:
        raise ExperimentError("--at recommended needs --from RUN (a search's run folder or id)")
    run = load_run(from_run)
    rec = run.summary.recommendation if run.summary is not None else None
    if not rec or not rec.get("app_tasks") or not rec.get("peak_rps"):
        raise CapacityError(f"--from {from_run}: the run has no recommendation to soak at")
    from capacity.size.rules import soak_rate

    rate, how = soak_rate(rec, exp.cluster.app_tasks)
    return rate, f"recommended by {run.run_id}: {how}"
