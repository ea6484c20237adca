"""The ``kneed`` package asked the same question as our kneedle: a cross-check used only by the tests.

``kneed`` is in the ``test`` extra, never a runtime dependency.
"""

from __future__ import annotations

import numpy as np
from kneed import KneeLocator

from capacity.analyze.kneedle import Curve, Direction, Interp


def kneed_knee(
    x: object,
    y: object,
    *,
    curve: Curve = "convex",
    direction: Direction = "increasing",
    S: float = 1.0,
    interp: Interp = "interp1d",
    degree: int = 7,
) -> float | None:
    """kneed's knee of (x, y), or None when it finds none."""
    loc = KneeLocator(
        np.asarray(x, dtype=float),
        np.asarray(y, dtype=float),
        S=S,
        curve=curve,
        direction=direction,
        interp_method=interp,
        polynomial_degree=degree,
    )
    return None if loc.knee is None else float(loc.knee)
