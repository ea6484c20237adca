"""A stage stopped in its warm-up by a client-side guard still has its server metrics fetched, over the
seconds it ran, and its bottleneck named from them (on --stack puma such stages named nothing)."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from types import SimpleNamespace
from typing import Any

import pandas as pd

from capacity.analyze.bottleneck import stage_bottleneck
from capacity.judge.verdict import judge_measurement
from capacity.observe.stage_metrics import StageMetrics, StageWindow
from capacity.plan.experiment import Guards
from capacity.search.stage_runner import StageRunner
from tests.judge.test_verdict import T0, measurement


class RecordingSource:
    def __init__(self) -> None:
        self.windows: list[StageWindow] = []

    def fetch_stage(self, window: StageWindow, *, wait: bool = True) -> StageMetrics:
        self.windows.append(window)
        figures = {"pool_busy_pct": 100.0, "pool_capacity_p50": 0.0, "backlog_max": 12.0, "db_pool_waiting": 0.0}
        return StageMetrics(frame=pd.DataFrame(), aggregates=figures, completeness={})


def test_a_stage_stopped_in_its_warmup_is_observed_over_the_time_it_ran_and_named() -> None:
    meas = replace(
        measurement(latency_ms=900.0, aborted="p95", aborted_in_warmup=True),
        load_ended_at=T0 + timedelta(seconds=2),  # stopped 2 s into its 5 s warm-up
    )
    source = RecordingSource()
    fake: Any = SimpleNamespace(
        parts=SimpleNamespace(source=source, exp=SimpleNamespace(guards=Guards())),
        progress=SimpleNamespace(note=lambda _text: None),
        metrics_wait=False,
    )
    seen = StageRunner.observe(fake, meas)
    (window,) = source.windows
    assert (window.start, window.end) == (T0, T0 + timedelta(seconds=2))
    result = judge_measurement(meas, Guards(slo_p95_ms=300.0), probe="ramp", server=seen.server)
    assert result.verdict == "fail" and result.aborted_in_warmup
    named = stage_bottleneck(result)
    assert named.resource == "puma_threads" and "backlog up to 12" in named.evidence
