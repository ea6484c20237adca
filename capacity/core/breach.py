"""The breach record: one broken rule, as data, wherever the rule was evaluated.

Client-side windows and whole stages (``judge``), server metrics (``observe``) and the recovery
wait all yield this one shape, so the verdict, the stop reason, the live table and the report read
its fields instead of parsing the sentence written for people. It lives below both ``judge`` and
``observe`` (same layer, neither may import the other).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from capacity.core.outcomes import GuardCode

STAGE = "stage"
"""``window`` of a rule judged over the whole measured part of a stage."""
RECOVERY = "recovery"
"""``window`` of a rule judged while waiting for the target to recover between stages."""


def rolling(seconds: int) -> str:
    """``window`` of a rule judged over the last ``seconds`` of a running stage."""
    return f"window {seconds} s"


def _figure(v: float) -> str:
    return f"{v:.0f}" if abs(v) >= 100 else f"{v:.3g}"


@dataclass(frozen=True)
class Breach:
    """One broken rule.

    ``code`` is stable (``stopped_reason`` is ``guard:<code>``); ``metric`` names the figure judged
    (``p95_ms``, ``queue_growth_per_s``...); ``scope`` the task or queue it concerns ("" for the whole
    target); ``window`` where it was judged (``window 5 s``, ``stage``, ``recovery``); ``text`` is the
    line for people, written from the other fields by the rule that found the breach.
    """

    code: str
    metric: str
    text: str
    value: float | None = None
    limit: float | None = None
    scope: str = ""
    window: str = STAGE

    @property
    def generator(self) -> bool:
        """True when the load generator, not the target, broke the rule (the stage is invalid)."""
        return self.code == GuardCode.GENERATOR

    @property
    def short(self) -> str:
        """``p95 812`` / ``memory 93 (web-1)``: the code, the figure and the scope, for a narrow column."""
        figure = "" if self.value is None else f" {_figure(self.value)}"
        where = f" ({self.scope})" if self.scope else ""
        return f"{self.code}{figure}{where}"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)
