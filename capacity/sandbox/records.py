"""The synthetic records the sandbox serves: the same function, seed and count as the workload side.

``capacity.plan.testdata`` imports neither Locust nor gevent, so the sandbox (asyncio, never
monkey-patched) imports it directly.
"""

from __future__ import annotations

from capacity.plan.testdata import STATIONS, Record, synthetic_records

__all__ = ["STATIONS", "Record", "synthetic_records"]
