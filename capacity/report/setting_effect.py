"""Did a setting move the knee? Two runs that differ in a setting, read as an experiment on it.

The usual way to find a bottleneck by hand is to change one setting and see whether the knee moves:
raise Puma's threads from 5 to 10 with an ActiveRecord pool of 5 and the knee stays where it was,
because the pool, not the threads, is what requests wait for. ``setting_effect`` reads the two runs'
experiments (as their manifests kept them), lists the settings that changed (``[sandbox]`` and
``[cluster]``: the shape of what was measured, not how it was measured), and says whether the knee
(else the SLO capacity, else the saturation) moved beyond both the noise (the intervals overlap) and
the search's resolution, naming the bottleneck the runs report. Pure: dicts and summaries in, a
finding out.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from capacity.core.models import RunSummary

SECTIONS = ("sandbox", "cluster")
"""The experiment sections whose settings describe the system under test."""
MIN_MOVE_PCT = 5.0
"""A figure moves only when it changes by more than this (the adaptive search's default resolution)."""
FIGURE_ORDER = (("knee", "knee_rps"), ("slo_capacity", "slo_capacity_rps"), ("saturation", "saturation_rps"))


@dataclass
class SettingEffect:
    """The settings two runs differ in, and what that did to the capacity figure both runs have."""

    changed: dict[str, list[Any]] = field(default_factory=dict)
    """``section.key -> [baseline, candidate]`` for every setting that differs."""
    figure: str | None = None
    """The figure judged: the knee when both runs determined one, else SLO capacity, else saturation."""
    baseline_rps: float | None = None
    candidate_rps: float | None = None
    moved: bool | None = None
    """None when no figure is usable in both runs."""
    bottlenecks: list[str | None] = field(default_factory=lambda: [None, None])
    text: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "changed": self.changed,
            "figure": self.figure,
            "baseline_rps": self.baseline_rps,
            "candidate_rps": self.candidate_rps,
            "moved": self.moved,
            "bottlenecks": list(self.bottlenecks),
            "text": self.text,
        }


def changed_settings(a: dict[str, Any], b: dict[str, Any]) -> dict[str, list[Any]]:
    """``section.key -> [a, b]`` for the system-under-test settings that differ between two experiments."""
    out: dict[str, list[Any]] = {}
    for section in SECTIONS:
        sa, sb = a.get(section) or {}, b.get(section) or {}
        for key in sorted(set(sa) & set(sb)):  # a key only one run has is a newer tool's default, not a change
            va, vb = sa[key], sb[key]
            if va != vb and not isinstance(va, dict) and not isinstance(vb, dict):
                out[f"{section}.{key}"] = [va, vb]
    return out


def _usable(summary: RunSummary, name: str, field_name: str) -> tuple[float, float, float] | None:
    """(value, lo, hi) of a figure the run determined (reached, not extrapolated), else None."""
    est = summary.estimates.get(name)
    value = est.value if est is not None else getattr(summary, field_name)
    if value is None or (est is not None and (not est.reached or est.extrapolated)):
        return None
    lo = est.lo if est is not None and est.lo is not None else value
    hi = est.hi if est is not None and est.hi is not None else value
    return value, min(lo, hi), max(lo, hi)


def _resource(summary: RunSummary) -> str | None:
    return summary.bottleneck.resource if summary.bottleneck is not None else None


def setting_effect(
    experiment_a: dict[str, Any], experiment_b: dict[str, Any], a: RunSummary, b: RunSummary
) -> SettingEffect | None:
    """What changing the settings between run ``a`` and run ``b`` did; None when no setting changed."""
    changed = changed_settings(experiment_a, experiment_b)
    if not changed:
        return None
    effect = SettingEffect(changed=changed, bottlenecks=[_resource(a), _resource(b)])
    what = ", ".join(f"{k.split('.', 1)[1]} {va} -> {vb}" for k, (va, vb) in changed.items())
    for name, field_name in FIGURE_ORDER:
        fa, fb = _usable(a, name, field_name), _usable(b, name, field_name)
        if fa is None or fb is None:
            continue
        effect.figure, effect.baseline_rps, effect.candidate_rps = name, fa[0], fb[0]
        change = (fb[0] - fa[0]) / fa[0] * 100.0 if fa[0] else 0.0
        overlap = fa[1] <= fb[2] and fb[1] <= fa[2]
        effect.moved = abs(change) > MIN_MOVE_PCT and not overlap
        label = name.replace("_", " ")
        moved = f"moved {change:+.1f}%" if effect.moved else f"did not move ({change:+.1f}%, within noise)"
        effect.text = f"{what}: the {label} {moved}, {fa[0]:.4g} -> {fb[0]:.4g} req/s"
        break
    else:
        effect.text = f"{what}: no capacity figure both runs determined, so no effect can be read"
        return effect
    ra, rb = effect.bottlenecks
    if ra is not None and ra == rb:
        effect.text += (
            f"; both runs limited by {ra}, so the changed setting is not the bottleneck"
            if not effect.moved
            else f"; both runs limited by {ra}"
        )
    elif ra is not None or rb is not None:
        effect.text += f"; bottleneck {ra or 'not named'} -> {rb or 'not named'}"
    return effect
