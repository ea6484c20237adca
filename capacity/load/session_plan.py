"""Flows compiled for running as sessions: each step's endpoint, calls, think time and extractions.

Built once per executor (per run), so a session's hot path only reads tuples: ``StepProgram`` is
what one step does, ``Session`` the small record one flow instance carries (flow, step, calls left,
its record's values plus what it extracted, its intended start), and ``SessionPlan`` the arrival mix
(independent requests first, then one arrival kind per session flow) with its arrivals-per-request
ratio, so the engine turns a stage's request rate into exact session starts.
"""

from __future__ import annotations

import json
import math
import random
from dataclasses import dataclass
from typing import Any

from capacity.plan.experiment import Workload
from capacity.plan.session_steps import MISSING, JsonPath, Think, walk
from capacity.plan.workload import Flow, independent_weights

EXTRACT_FAILED = "error:extract"
"""A session's step answered without the value its ``extract`` names: the session fails there."""


@dataclass(frozen=True, slots=True)
class StepProgram:
    kind: int
    """Index of the step's endpoint (a request kind)."""
    whole: int
    frac: float
    """Calls: ``whole``, plus one more with probability ``frac``."""
    think_fixed: float
    think: Think | None
    extract: tuple[tuple[str, JsonPath], ...]

    def calls(self, rng: random.Random) -> int:
        return self.whole + (1 if self.frac and rng.random() < self.frac else 0)

    def pause(self, rng: random.Random) -> float:
        return self.think.draw(rng) if self.think is not None else self.think_fixed


@dataclass(frozen=True, slots=True)
class FlowProgram:
    name: str
    steps: tuple[StepProgram, ...]
    consumes: bool
    """A session of this flow uses up its record (one per session)."""


class Session:
    """One flow instance in flight: a small record, no greenlet of its own."""

    __slots__ = ("flow", "headers", "left", "measured", "step", "t0", "values")

    def __init__(self, flow: int, t0: float, measured: int) -> None:
        self.flow = flow
        self.t0 = t0
        self.measured = measured
        self.step = 0
        self.left = -1
        """Calls of the current step still to make (-1: not drawn yet)."""
        self.values: dict[str, str] | None = None
        self.headers: dict[str, str] | None = None
        """The session's own headers (its token with ``[target.auth] scope = "session"``)."""


def compile_flow(flow: Flow, kinds: dict[str, int], consumes: bool) -> FlowProgram:
    steps = []
    for s in flow.steps:
        whole = math.floor(s.count + 1e-9)
        think = s.think_s if s.think_s.fixed is None else None
        fixed = s.think_s.fixed or 0.0
        steps.append(
            StepProgram(
                kind=kinds[s.endpoint],
                whole=whole,
                frac=max(0.0, s.count - whole),
                think_fixed=fixed,
                think=think,
                extract=tuple(s.extract_paths().items()),
            )
        )
    return FlowProgram(flow.name, tuple(steps), consumes)


@dataclass(frozen=True)
class SessionPlan:
    flows: tuple[FlowProgram, ...]
    weights: tuple[float, ...]
    """Arrival weights: each endpoint's independent requests, then each flow's sessions/min."""
    ratio: float
    """Arrivals per request at the planned mix: the stage's request rate times this is its arrival rate."""

    @property
    def session_share(self) -> list[float]:
        """Each flow's share of arrivals."""
        total = sum(self.weights)
        n = len(self.weights) - len(self.flows)
        return [w / total for w in self.weights[n:]]


def session_plan(workload: Workload) -> SessionPlan | None:
    """The workload's session flows compiled (None when no flow runs as sessions)."""
    flows = workload.sessions
    if not flows:
        return None
    kinds = {e.name: i for i, e in enumerate(workload.endpoints)}
    programs = tuple(compile_flow(f, kinds, workload.consumes_records(f)) for f in flows)
    weights = (*independent_weights(workload), *(f.per_minute for f in flows))
    requests = sum(e.share_weight for e in workload.endpoints)
    return SessionPlan(programs, weights, sum(weights) / requests)


def extract_into(values: dict[str, str], body: bytes, extract: tuple[tuple[str, JsonPath], ...]) -> bool:
    """Put the answer's values at ``extract``'s paths into ``values``; False when one is missing."""
    try:
        doc: Any = json.loads(body)
    except ValueError:
        return False
    for key, path in extract:
        v = walk(doc, path)
        if v is MISSING or v is None:
            return False
        values[key] = v if isinstance(v, str) else json.dumps(v)
    return True
