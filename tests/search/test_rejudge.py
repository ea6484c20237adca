"""A stage judged with a blind guard is judged again when the catch-up pass brings its metrics (issue 21)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd

from capacity.core.breach import STAGE, Breach
from capacity.core.models import StageResult
from capacity.judge.rejudge import change_note, rejudge
from capacity.judge.verdict import blind_note
from capacity.observe.stage_metrics import StageMetrics
from capacity.plan.experiment import parse_experiment
from capacity.search.finish import RunState
from capacity.search.late import catch_up
from capacity.store import RunStore
from tests.helpers import make_stage_result

T0 = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
EXP = parse_experiment(
    {
        "name": "rejudge",
        "target": {"base_url": "http://127.0.0.1:9"},
        "workload": {"endpoints": [{"name": "a", "path": "/a"}]},
        "guards": {"max_mem_pct": 90.0},
    }
)


def stage(index: int, verdict: str = "pass", blind: list[str] | None = None) -> StageResult:
    blind = blind if blind is not None else ["mem_usage"]
    return make_stage_result(
        index=index,
        target_rps=10.0 * (index + 1),
        verdict=verdict,
        reasons=[blind_note(blind)] if blind else [],
        metrics={"cpu_pct": 20.0},
        metrics_completeness={"cpu_pct": 1.0, "mem_usage": 0.0},
        blind=blind,
        started_at=T0 + timedelta(seconds=30 * index),
        measure_from=T0 + timedelta(seconds=30 * index + 5),
        ended_at=T0 + timedelta(seconds=30 * index + 25),
    )


MEM = Breach("memory", "mem_pct_max", "memory 95% > 90%", 95.0, 90.0, "", STAGE)


def test_a_late_breach_fails_a_stage_that_passed_blind() -> None:
    after = rejudge(stage(0), [MEM], [])
    assert (after.verdict, after.rejudged, after.blind) == ("fail", True, [])
    assert after.reasons == ["memory 95% > 90%"] and after.breaches == [MEM]
    assert change_note(stage(0), after) == "stage 0 re-judged with late metrics: pass -> fail (memory 95% > 90%)"


def test_late_metrics_that_hold_keep_the_verdict_and_say_it_was_judged_again() -> None:
    after = rejudge(stage(0), [], [])
    assert (after.verdict, after.rejudged, after.reasons) == ("pass", True, [])
    assert change_note(stage(0), after) is None


def test_still_blind_or_invalid_stages_keep_their_verdict() -> None:
    assert rejudge(stage(0), [MEM], ["mem_usage"]) == stage(0)  # nothing new answered
    invalid = rejudge(stage(0, "invalid: generator"), [MEM], [])
    assert invalid.verdict == "invalid: generator" and invalid.breaches == [MEM]
    assert rejudge(stage(0, blind=[]), [MEM], []) == stage(0, blind=[])


class LateSource:
    """Memory arrives only now: 95% on stage 1, 40% on stage 0."""

    def fetch_stage(self, window: object, wait: bool = True) -> StageMetrics:
        i = window.stage  # type: ignore[attr-defined]
        pct = 95.0 if i == 1 else 40.0
        frame = pd.DataFrame({"stage": [i], "metric": ["mem_usage"], "group": ["*"], "t": [1.0], "value": [1.0]})
        return StageMetrics(frame, {"mem_pct": pct, "mem_pct_max": pct}, {"cpu_pct": 1.0, "mem_usage": 1.0})


def test_catch_up_rejudges_stores_and_says_which_stages_changed(tmp_path: Path) -> None:
    store = RunStore.create(tmp_path, EXP)
    state = RunState(results=[stage(0), stage(1)])
    for r in state.results:
        store.write_stage(r, [])
    changed = catch_up(LateSource(), EXP, store, state)
    assert changed == [1]
    assert [r.verdict for r in state.results] == ["pass", "fail"] and all(r.rejudged for r in state.results)
    assert state.first_breach == {1: "memory"}
    assert state.warnings == ["stage 1 re-judged with late metrics: pass -> fail (memory 95% > 90%)"]
    on_disk = json.loads((store.path / "stages" / "stage-001.json").read_text())
    assert on_disk["verdict"] == "fail" and on_disk["rejudged"] is True and on_disk["metrics"]["mem_pct_max"] == 95.0
