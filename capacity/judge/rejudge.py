"""Judging a stage again when the metrics its blind guards lacked arrive late (the catch-up pass).

A stage judged while a guard's query had no data passed that guard by default ("blind", said in its
reasons). When the catch-up pass later brings those metrics, the guard judges what it could not: a
new breach fails a stage that passed, and the stage says it was judged again (``rejudged``). The
verdict's precedence stays ``decide``'s: an interrupted or invalid stage keeps its verdict (its
breaches still gain the new records). Pure: a result and breach records in, a result out.
"""

from __future__ import annotations

from collections.abc import Sequence

from capacity.core.breach import Breach
from capacity.core.models import StageResult
from capacity.core.outcomes import Verdict
from capacity.judge.verdict import blind_note


def answered_blind(result: StageResult, blind_now: Sequence[str]) -> list[str]:
    """The stage's blind queries that have data now."""
    return [n for n in result.blind if n not in blind_now]


def rejudge(result: StageResult, metric_breaches: Sequence[Breach], blind_now: Sequence[str]) -> StageResult:
    """``result`` judged again with the late metrics' breaches; unchanged unless a blind query now answers."""
    if not answered_blind(result, blind_now):
        return result
    known = {(b.code, b.scope) for b in result.breaches}
    new = [b for b in metric_breaches if (b.code, b.scope) not in known]
    verdict = Verdict.FAIL if result.verdict is Verdict.PASS and new else result.verdict
    old_texts = {b.text for b in result.breaches}
    reasons = [r for r in result.reasons if r != blind_note(result.blind)]
    at = max((i + 1 for i, r in enumerate(reasons) if r in old_texts), default=0)
    reasons[at:at] = [b.text for b in new]
    if blind_now:
        reasons.append(blind_note(blind_now))
    return result.model_copy(
        update={
            "verdict": verdict,
            "reasons": reasons,
            "breaches": [*result.breaches, *new],
            "blind": list(blind_now),
            "rejudged": True,
        }
    )


def change_note(before: StageResult, after: StageResult) -> str | None:
    """The sentence for the summary's warnings and the report when re-judging changed the verdict."""
    if before.verdict == after.verdict:
        return None
    why = "; ".join(b.text for b in after.breaches[len(before.breaches) :])
    return f"stage {after.index} re-judged with late metrics: {before.verdict} -> {after.verdict} ({why})"
