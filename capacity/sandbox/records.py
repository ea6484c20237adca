"""The shared synthetic records, loaded without importing ``capacity.load``.

``capacity/load/__init__.py`` imports Locust first (gevent monkey-patching); the sandbox runs on
asyncio and must not be patched, so it loads ``testdata.py`` directly from its file. Same function,
same seed and count, same records as the workload side.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

_NAME = "capacity.sandbox._testdata"


def _testdata() -> ModuleType:
    mod = sys.modules.get("capacity.load.testdata") or sys.modules.get(_NAME)
    if mod is not None:
        return mod
    path = Path(__file__).resolve().parent.parent / "load" / "testdata.py"
    spec = importlib.util.spec_from_file_location(_NAME, path)
    if spec is None or spec.loader is None:  # pragma: no cover
        raise ImportError(f"cannot load {path}")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[_NAME] = mod
    spec.loader.exec_module(mod)
    return mod


if TYPE_CHECKING:
    from capacity.load.testdata import STATIONS, Record, synthetic_records
else:
    _mod = _testdata()
    Record = _mod.Record
    synthetic_records = _mod.synthetic_records
    STATIONS = _mod.STATIONS

__all__ = ["STATIONS", "Record", "synthetic_records"]
