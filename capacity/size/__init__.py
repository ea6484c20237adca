"""Sizing: a production recommendation from a staging run's analysis (every figure names its inputs)."""

from capacity.size.recommend import Recommendation, recommend, round_to_zones
from capacity.size.scenarios import SizingAsk

__all__ = ["Recommendation", "SizingAsk", "recommend", "round_to_zones"]
