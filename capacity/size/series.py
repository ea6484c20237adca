"""``capacity scale``'s recommendation: the base size's linear recommendation, then the curve beside it.

The base size (the one nearest ``[cluster] app_tasks``) is sized exactly as ``search`` sizes it
(``capacity.size.recommend``, throughput and CPU rules); the curve (``capacity.size.curve``) is read
with the same demand and headroom; the larger count binds. With one size the curve is the line, so
the answer is the search's, to the task.
"""

from __future__ import annotations

import re
from typing import Any

from capacity.plan.experiment import Cluster, Production
from capacity.size import rules
from capacity.size.curve import CurveFit, CurveSizing
from capacity.size.rules import Step, past

TASK_STEPS = ("tasks by throughput", "tasks by CPU", "zones", "N+1")
PAST = re.compile(r" \(extrapolated: [^)]*\)")


def _against_largest(chain: list[dict[str, Any]], largest: int) -> list[dict[str, Any]]:
    """The base size's chain with its extrapolation said against the largest size of the series."""
    out = []
    for step in chain:
        v = step.get("value")
        if step.get("step") in TASK_STEPS and isinstance(v, int | float):
            source = PAST.sub("", str(step.get("source", ""))) + past(float(v), largest)
            step = {**step, "source": source, "extrapolated": float(v) > largest}
        out.append(step)
    return out


def _curve_steps(sizing: CurveSizing, fit: CurveFit, largest: int) -> list[Step]:
    sizes = ", ".join(map(str, fit.sizes))
    fewest = sizing.curve_min_tasks
    steps = [
        Step(
            "tasks by scaling curve",
            fewest,
            f"fewest N with X(N) >= {sizing.need_rps:.4g} req/s (demand x (1 + throughput_headroom)) on the "
            f"{fit.model} fit of SLO capacity at {sizes} tasks (sigma {fit.sigma:.3g}, kappa {fit.kappa:.3g})"
            + (past(fewest, largest) if fewest is not None else f"; {sizing.refused}"),
            fewest is not None and fewest > largest,
        ),
    ]
    if sizing.app_tasks_curve is not None:
        steps.append(
            Step(
                "curve: zones and N+1",
                sizing.app_tasks_curve,
                f"as the line's rounding{past(sizing.app_tasks_curve, largest)}",
                sizing.app_tasks_curve > largest,
            )
        )
    return steps


def series_recommendation(
    base: dict[str, Any],
    sizing: CurveSizing,
    fit: CurveFit,
    *,
    largest: int,
    cluster: Cluster,
    production: Production,
) -> dict[str, Any]:
    """The base size's recommendation (every key kept) with the curve's keys, and the binding answer."""
    linear = int(base["app_tasks"])
    curve = sizing.app_tasks_curve
    out = {**base, **sizing.to_dict()}
    out["app_tasks_linear"] = linear
    if curve is None:
        out["binding"] = "curve (refused)"
        out["app_tasks"] = None
        out["app_tasks_range"] = None
        final_source = sizing.refused or "the curve cannot carry the demand"
    else:
        out["binding"] = "curve" if curve > linear else ("linear" if linear > curve else "both")
        out["app_tasks"] = max(linear, curve)
        lo_l, hi_l = base.get("app_tasks_range") or [linear, linear]
        lo_c, hi_c = sizing.curve_range or [curve, curve]
        out["app_tasks_range"] = rules.widen([max(lo_l, lo_c), max(hi_l, hi_c)], out["app_tasks"])
        final_source = (
            f"the larger of the line ({linear}, from {sizing.linear_from_tasks} tasks) and the curve ({curve})"
        )
    chain = [
        *_against_largest(base.get("chain") or [], largest),
        *(s.to_dict() for s in _curve_steps(sizing, fit, largest)),
    ]
    app = out["app_tasks"]
    chain.append(
        Step("binding rule (line or curve)", app, final_source, bool(app is not None and app > largest)).to_dict()
    )
    out["chain"] = chain
    out["extrapolation"] = rules.extrapolation(app or 0, largest)
    if app is not None:
        out["limits"] = rules.check_limits(app, int(base.get("sidekiq_tasks") or 0), cluster, production)
        out["notes"] = [n for n in base.get("notes") or [] if not n.startswith("production limit ")]
        out["notes"] += rules.limit_warnings(out["limits"])
    out["notes"] = [*(out.get("notes") or []), *sizing.notes]
    return out
