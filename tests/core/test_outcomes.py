"""The outcome vocabulary: members read as fields, and the strings on disk stay what they were."""

from __future__ import annotations

import json

import pytest

from capacity.analyze.table import is_valid_verdict
from capacity.core.outcomes import Cause, GuardCode, StopReason, Validity, Verdict, guard_stop
from capacity.judge.verdict import decide
from capacity.search.stop_rules import after_stage
from tests.search.test_rules import stage as make_stage


@pytest.mark.parametrize(
    ("text", "validity", "cause"),
    [
        ("pass", Validity.VALID, None),
        ("fail", Validity.VALID, None),
        ("interrupted", Validity.INTERRUPTED, None),
        ("invalid: generator", Validity.INVALID, Cause.GENERATOR),
        ("invalid: worker lost", Validity.INVALID, Cause.WORKER_LOST),
        ("invalid: task drift", Validity.INVALID, Cause.TASK_DRIFT),
        ("invalid: test data", Validity.INVALID, Cause.TEST_DATA),
        ("invalid: auth", Validity.INVALID, Cause.AUTH),
    ],
)
def test_a_stored_verdict_reads_back_as_validity_and_cause(text: str, validity: Validity, cause: Cause | None) -> None:
    v = Verdict(text)
    assert (v.validity, v.cause, v.is_valid) == (validity, cause, validity is Validity.VALID)
    assert json.dumps(v) == json.dumps(text)  # the value on disk is the old string
    if cause is not None:
        assert Verdict.invalid(cause) is v


def test_decide_returns_members_whose_json_is_unchanged() -> None:
    assert decide([], auth=True) is Verdict.INVALID_AUTH
    assert decide([], interrupted=True, auth=True) is Verdict.INTERRUPTED
    assert str(decide([])) == "pass"


def test_a_stage_result_keeps_its_verdict_string_on_disk_and_loads_old_files() -> None:
    stage = make_stage(0, "pass")
    raw = stage.model_dump(mode="json")
    assert raw["verdict"] in {v.value for v in Verdict}
    back = type(stage).model_validate_json(json.dumps({**raw, "verdict": "invalid: generator"}))
    assert back.verdict is Verdict.INVALID_GENERATOR and back.verdict.cause is Cause.GENERATOR
    with pytest.raises(ValueError, match="verdict"):
        type(stage).model_validate({**raw, "verdict": "invalid generator"})


def test_each_invalid_cause_but_a_lost_worker_stops_the_run_with_its_code() -> None:
    stage = make_stage(0, "pass")
    stops = {c: after_stage(stage.model_copy(update={"verdict": Verdict.invalid(c)}), interrupted=False) for c in Cause}
    assert {c: d.stop for c, d in stops.items()} == {
        Cause.GENERATOR: StopReason.GENERATOR,
        Cause.WORKER_LOST: None,
        Cause.TASK_DRIFT: StopReason.TASK_DRIFT,
        Cause.TEST_DATA: StopReason.TEST_DATA,
        Cause.AUTH: StopReason.AUTH,
    }
    assert all(not d.judged and d.warning for d in stops.values())
    assert after_stage(stage.model_copy(update={"verdict": Verdict.PASS}), interrupted=True).stop == "interrupted"


def test_guard_stops_and_foreign_verdicts() -> None:
    assert guard_stop(GuardCode.P95) == "guard:p95" and guard_stop(None) == "guard"
    assert not is_valid_verdict("Invalid: clock skew") and not is_valid_verdict(" interrupted ")
    assert is_valid_verdict("fail") and is_valid_verdict("ok") and not is_valid_verdict("invalid: auth")
