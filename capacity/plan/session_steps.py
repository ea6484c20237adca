"""What a flow's step may add when flows run as sessions: a think time and values taken from an answer.

Pure data and parsing: the load generator compiles these once per run (``JsonPath`` is a tuple of
keys and indices walked on the parsed answer; a ``Think`` draws one pause from a seeded stream).
"""

from __future__ import annotations

import random
import re
from typing import Any

from pydantic import model_validator

from capacity.plan.base import NonNegFloat, PositiveFloat, Strict

_SEGMENT = re.compile(r"\.([A-Za-z_][A-Za-z0-9_-]*)|\[(\d+)\]|\[\"([^\"]+)\"\]|\['([^']+)'\]")
JsonPath = tuple[str | int, ...]
RECORD_FIELDS = ("sta3n", "dfn", "ien", "clinic")
"""A test record's values (``capacity.plan.testdata.FIELDS``): every other placeholder comes from an answer."""
MISSING = object()
"""What ``walk`` returns when a path does not lead to a value."""


def parse_json_path(text: str) -> JsonPath:
    """``$.data.attributes.jobId`` / ``$.items[0].id`` / ``$["odd key"]`` -> keys and indices.

    A small subset of JSONPath: dotted names, ``[n]`` indices and quoted keys; nothing else, so a typo
    is an error at load time rather than a value never found during the run."""
    if not text.startswith("$"):
        raise ValueError(f"a JSON path starts with '$', got {text!r}")
    out: list[str | int] = []
    pos = 1
    while pos < len(text):
        m = _SEGMENT.match(text, pos)
        if m is None:
            raise ValueError(f'JSON path {text!r}: cannot read from {text[pos:]!r} (use .name, [n] or ["key"])')
        name, index, dq, sq = m.groups()
        out.append(int(index) if index is not None else (name or dq or sq))
        pos = m.end()
    if not out:
        raise ValueError(f"JSON path {text!r} names no value")
    return tuple(out)


def walk(doc: Any, path: JsonPath) -> Any:
    """The value at ``path`` in a parsed JSON document, or ``MISSING``."""
    for seg in path:
        if isinstance(seg, int):
            if not isinstance(doc, list) or seg >= len(doc):
                return MISSING
        elif not isinstance(doc, dict) or seg not in doc:
            return MISSING
        doc = doc[seg]
    return doc


class Think(Strict):
    """A think time: ``fixed`` seconds (a plain number in the file), ``uniform = [lo, hi]``, ``exponential = mean``."""

    fixed: NonNegFloat | None = None
    uniform: tuple[NonNegFloat, NonNegFloat] | None = None
    exponential: PositiveFloat | None = None
    max_s: PositiveFloat = 600.0
    """An exponential draw is capped here: one session never waits for an hour."""

    @model_validator(mode="after")
    def _one_kind(self) -> Think:
        if sum(x is not None for x in (self.fixed, self.uniform, self.exponential)) != 1:
            raise ValueError("give seconds, or exactly one of 'uniform' = [lo, hi] or 'exponential' = mean")
        if self.uniform is not None and self.uniform[1] < self.uniform[0]:
            raise ValueError(f"uniform = [lo, hi] needs lo <= hi, got {list(self.uniform)}")
        return self

    @property
    def mean_s(self) -> float:
        if self.fixed is not None:
            return self.fixed
        if self.uniform is not None:
            return (self.uniform[0] + self.uniform[1]) / 2
        return float(self.exponential or 0.0)

    def draw(self, rng: random.Random) -> float:
        if self.fixed is not None:
            return self.fixed
        if self.uniform is not None:
            return rng.uniform(*self.uniform)
        return min(self.max_s, rng.expovariate(1.0 / float(self.exponential or 1.0)))


NO_THINK = Think(fixed=0.0)


def as_think(v: Any) -> Any:
    """A plain number in the file is a fixed think time."""
    return {"fixed": v} if isinstance(v, int | float) and not isinstance(v, bool) else v
