"""A scaling series on disk: ``<results>/<series_id>/`` holds one run folder per size and ``scaling.json``.

``scaling.json`` is what ``capacity scale --json`` prints (``sizes``, ``fit``, ``recommendation``)
plus the series' own facts (experiment, times, stop reason, warnings, the sandbox's truth). It is
rewritten after every size, so an interrupted series still lists what it measured.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from capacity.core.errors import CapacityError
from capacity.store.atomic import atomic_write_text

SCALING_FILE = "scaling.json"


def write_scaling(series_dir: Path, data: dict[str, Any]) -> Path:
    path = series_dir / SCALING_FILE
    atomic_write_text(path, json.dumps(data, indent=2, default=str) + "\n")
    return path


def load_scaling(path: str | Path) -> dict[str, Any]:
    """A series' ``scaling.json`` (give the series folder or the file)."""
    p = Path(path)
    file = p / SCALING_FILE if p.is_dir() else p
    if not file.is_file():
        raise CapacityError(f"{p}: not a scaling series (no {SCALING_FILE})")
    try:
        data: dict[str, Any] = json.loads(file.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise CapacityError(f"{file}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
    data.setdefault("path", str(file.parent))
    return data


def list_series(root: str | Path = "results") -> list[dict[str, Any]]:
    """Every scaling series under ``root``, newest first; unreadable ones are skipped."""
    r = Path(root)
    if not r.is_dir():
        return []
    found = []
    for child in r.iterdir():
        if (child / SCALING_FILE).is_file():
            try:
                found.append(load_scaling(child))
            except CapacityError:
                continue
    found.sort(key=lambda d: (str(d.get("started_at") or ""), str(d.get("series_id") or "")), reverse=True)
    return found
