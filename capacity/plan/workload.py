"""``[workload]``: the request kinds, the user flows that set their 1x rates, and the test data.

A flow is what a user does once (a check-in, a pre-check-in): ``per_hour`` times at 1x peak, each
time calling ``steps`` endpoints ``count`` times. An endpoint without ``rpm`` or ``weight`` gets its
1x rate from the flows, so the profile's arithmetic is written down rather than only its totals.
With ``mode = "session"`` (the default) each flow instance is a session: it starts at the flow's
open-model rate, takes one test record, and sends its steps in order, each ``think_s`` after the
previous answer, with values ``extract``ed from earlier answers; ``"mix"`` draws every request on its own.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from capacity.plan.base import HttpMethod, NonNegFloat, PositiveFloat, Strict
from capacity.plan.session_steps import NO_THINK, RECORD_FIELDS, JsonPath, Think, as_think, parse_json_path

StatusCode = Annotated[int, Field(ge=100, le=599)]
_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
RPM_TOLERANCE = 0.5
"""How far (requests/min) an endpoint's written ``rpm`` may be from its flows' before it is an error."""


class Endpoint(Strict):
    """One request kind in the mix. ``weight`` or ``rpm`` (requests/min at 1x peak) sets its share."""

    name: str = Field(min_length=1)
    method: HttpMethod = "GET"
    path: str = Field(min_length=1)
    body: str | None = None
    weight: PositiveFloat | None = None
    rpm: PositiveFloat | None = None
    consumes: bool = False
    """True when each request uses up one test record (e.g. a check-in): records are not reused."""
    enqueues_jobs: NonNegFloat = 0.0
    """Background jobs this request enqueues (Sidekiq); used by sizing when metrics cannot tell."""
    expect_status: list[StatusCode] = Field(default_factory=list)
    """Statuses the smoke preflight accepts; empty means any 2xx."""
    assumption: str = ""
    """What about this request is a guess (method, body): shown by ``--dry-run`` until someone confirms it."""

    @field_validator("path")
    @classmethod
    def _path(cls, v: str) -> str:
        if not v.startswith("/"):
            raise ValueError(f"must start with '/', got {v!r}")
        return v

    @property
    def share_weight(self) -> float:
        return self.weight if self.weight is not None else (self.rpm if self.rpm is not None else 1.0)

    def accepts(self, status: int) -> bool:
        """Whether the smoke preflight takes ``status`` as a working answer."""
        return status in self.expect_status if self.expect_status else 200 <= status < 300


class FlowStep(Strict):
    endpoint: str = Field(min_length=1)
    count: PositiveFloat = 1.0
    """Calls of ``endpoint`` per flow (may be fractional: an average; a session then makes the whole
    part and one more call with the fraction's probability)."""
    think_s: Think = NO_THINK
    """Sessions: the pause after the previous answer before each call of this step (not before the
    session's first call): seconds, or ``{ uniform = [lo, hi] }`` / ``{ exponential = mean }``."""
    extract: dict[str, str] = Field(default_factory=dict)
    """Sessions: ``{ key = "$.json.path" }`` taken from this step's answer, used as ``{key}`` in later steps."""

    @field_validator("think_s", mode="before")
    @classmethod
    def _seconds(cls, v: object) -> object:
        return as_think(v)

    @field_validator("extract")
    @classmethod
    def _paths(cls, v: dict[str, str]) -> dict[str, str]:
        for key, path in v.items():
            if not key.isidentifier():
                raise ValueError(f"extract key {key!r} must be a name usable as {{{key}}}")
            parse_json_path(path)
        return v

    def extract_paths(self) -> dict[str, JsonPath]:
        return {k: parse_json_path(p) for k, p in self.extract.items()}


class Flow(Strict):
    """One user journey at 1x peak: ``per_hour`` of them, each making ``steps``' calls."""

    name: str = Field(min_length=1)
    per_hour: PositiveFloat
    steps: list[FlowStep] = Field(min_length=1)
    assumption: str = ""
    mode: Literal["session", "mix"] = "session"
    """``session``: each flow instance runs its steps in order about one record; ``mix``: the steps only
    set endpoint rates and every request is drawn on its own (the behaviour before sessions)."""

    @property
    def requests_per_session(self) -> float:
        return sum(s.count for s in self.steps)

    @property
    def mean_think_s(self) -> float:
        """Expected think time of one session (every call but the first waits its step's think time)."""
        total = sum(s.count * s.think_s.mean_s for s in self.steps)
        return max(0.0, total - self.steps[0].think_s.mean_s)

    @property
    def per_minute(self) -> float:
        """Flows per minute, counted in whole flows as the seed's profile does (145,000/h -> 2,417/min)."""
        return flow_per_minute(self.per_hour)

    def calls(self) -> dict[str, float]:
        """Endpoint -> calls per flow."""
        out: dict[str, float] = {}
        for s in self.steps:
            out[s.endpoint] = out.get(s.endpoint, 0.0) + s.count
        return out


def flow_per_minute(per_hour: float) -> float:
    """Whole flows per minute (the seed rounds each flow's rate before adding: 3 x 2,417 + 588 = 7,839)."""
    return float(round(per_hour / 60.0)) or per_hour / 60.0


def endpoint_rpm(flows: list[Flow], per_hour: Mapping[str, float] | None = None) -> dict[str, float]:
    """Requests/min per endpoint from ``flows`` (at ``per_hour[name]`` instead of 1x where given)."""
    out: dict[str, float] = {}
    for f in flows:
        if per_hour is None:
            rate = f.per_minute
        elif f.name in per_hour:
            rate = flow_per_minute(per_hour[f.name])
        else:
            continue
        for ep, n in f.calls().items():
            out[ep] = out.get(ep, 0.0) + rate * n
    return out


class TestData(Strict):
    """Where path/body placeholders (``{sta3n}``, ``{dfn}``, ``{ien}``...) get their values."""

    source: Literal["sandbox", "csv", "none"] = "sandbox"
    path: str | None = None
    seed: int = 42
    records: int = Field(5000, ge=1)

    @model_validator(mode="after")
    def _csv_needs_path(self) -> TestData:
        if self.source == "csv" and not self.path:
            raise ValueError("source 'csv' needs 'path'")
        return self


class Workload(Strict):
    endpoints: list[Endpoint] = Field(default_factory=list)
    flows: list[Flow] = Field(default_factory=list)
    locustfile: str | None = None
    test_data: TestData = Field(default_factory=TestData)  # type: ignore[arg-type]

    @model_validator(mode="after")
    def _some_work(self) -> Workload:
        if not self.endpoints and not self.locustfile:
            raise ValueError("needs at least one [[workload.endpoints]] or a 'locustfile'")
        names = [e.name for e in self.endpoints]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"endpoint names must be unique, repeated: {', '.join(dupes)}")
        if self.flows:
            # frozen model: the derived rates are set once, here, as if written in the file
            object.__setattr__(self, "endpoints", _with_flow_rates(self.endpoints, self.flows))
        return self

    @property
    def sessions(self) -> list[Flow]:
        """The flows run as sessions (none when a locustfile sets the work)."""
        return [f for f in self.flows if f.mode == "session"] if not self.locustfile else []

    def consumes_records(self, flow: Flow) -> bool:
        """A session of ``flow`` uses up its record when any of its steps consumes one."""
        eps = {e.name: e for e in self.endpoints}
        return any(eps[s.endpoint].consumes for s in flow.steps)

    @property
    def consuming_share(self) -> float:
        """Records used up per request: a consuming request uses one, a consuming session one in all."""
        total = sum(e.share_weight for e in self.endpoints)
        if not total:
            return 0.0
        alone = independent_weights(self)
        used = sum(alone[i] for i, e in enumerate(self.endpoints) if e.consumes)
        return (used + session_record_rate(self)) / total


def independent_weights(wl: Workload) -> list[float]:
    """Each endpoint's weight drawn on its own: its whole share, less what session flows send of it."""
    in_sessions = endpoint_rpm(wl.sessions)
    out = []
    for e in wl.endpoints:
        w = e.share_weight - in_sessions.get(e.name, 0.0)
        out.append(w if w > 1e-9 * max(1.0, e.share_weight) else 0.0)
    return out


def session_record_rate(wl: Workload) -> float:
    """Records/min that consuming sessions use up at 1x (one per session), in the endpoints' weight units.

    An endpoint shared by a session flow and standalone requests is counted once per session only."""
    return sum(f.per_minute for f in wl.sessions if wl.consumes_records(f))


def _check_extracts(endpoints: list[Endpoint], flows: list[Flow]) -> None:
    """A ``{key}`` taken from an answer is used only by later steps of a session flow that extracts it."""
    keys = {k for f in flows for s in f.steps for k in s.extract}
    by_name = {e.name: e for e in endpoints}

    def placeholders(ep: Endpoint) -> set[str]:
        return set(_PLACEHOLDER.findall(ep.path + (ep.body or ""))) - set(RECORD_FIELDS)

    mixed = {s.endpoint for f in flows if f.mode == "mix" for s in f.steps}
    in_sessions = {s.endpoint for f in flows if f.mode == "session" for s in f.steps}
    for f in flows:
        seen: set[str] = set()
        for i, s in enumerate(f.steps):
            if f.mode == "mix" and s.extract:
                raise ValueError(f"flow '{f.name}' step {i + 1}: extract needs mode = \"session\"")
            missing = placeholders(by_name[s.endpoint]) - seen
            if missing and f.mode == "session":
                raise ValueError(
                    f"flow '{f.name}' step {i + 1} ({s.endpoint}) uses {{{sorted(missing)[0]}}}, which no earlier "
                    "step of the flow extracts"
                )
            seen |= set(s.extract)
    for e in endpoints:
        used = placeholders(e) & keys
        if used and (e.name not in in_sessions or e.name in mixed):
            raise ValueError(
                f"endpoint '{e.name}' uses {{{sorted(used)[0]}}} from an answer, so it may only run as a "
                "later step of a session flow"
            )


def _with_flow_rates(endpoints: list[Endpoint], flows: list[Flow]) -> list[Endpoint]:
    """Endpoints with ``rpm`` from the flows; names, weights and written rates checked against them."""
    fnames = [f.name for f in flows]
    dupes = sorted({n for n in fnames if fnames.count(n) > 1})
    if dupes:
        raise ValueError(f"flow names must be unique, repeated: {', '.join(dupes)}")
    known = {e.name for e in endpoints}
    for f in flows:
        for i, s in enumerate(f.steps):
            if s.endpoint not in known:
                raise ValueError(
                    f"flow '{f.name}' step {i + 1} names endpoint '{s.endpoint}', which is not in "
                    f"[[workload.endpoints]] (known: {', '.join(sorted(known))})"
                )
    _check_extracts(endpoints, flows)
    rpm = endpoint_rpm(flows)
    out: list[Endpoint] = []
    for e in endpoints:
        derived = rpm.get(e.name)
        if derived is None:
            if e.rpm is None and e.weight is None:
                raise ValueError(f"endpoint '{e.name}' has no rpm or weight and is in no flow")
            out.append(e)
        elif e.weight is not None:
            raise ValueError(f"endpoint '{e.name}' has a weight and is in a flow: its rate comes from the flows")
        elif e.rpm is not None and abs(e.rpm - derived) > RPM_TOLERANCE:
            raise ValueError(f"endpoint '{e.name}' has rpm {e.rpm:g} but its flows give {derived:g}")
        else:
            out.append(e.model_copy(update={"rpm": derived}))
    return out
