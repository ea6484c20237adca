"""Run-time choices for a search that are not part of the experiment file (CLI flags, library callers)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from datetime import datetime

    import pandas as pd

StageCheck = Callable[["datetime", "datetime", "pd.DataFrame | None"], "str | None"]
"""Judges a stage's window (start, end) and server-metrics frame from outside the search: a reason makes
the stage invalid."""


@dataclass
class SearchOptions:
    """How to run an experiment here and now: where results go, how many workers, what the CLI said."""

    results_root: Path = Path("results")
    json_mode: bool = False
    workers: int = 0
    expect_remote_workers: int = 0
    master_bind: str = "127.0.0.1"
    allow_cleartext_workers: bool = False
    """Confirmed: a master beyond loopback sends the token, headers and records to workers in clear."""
    master_port: int = 0
    allow_hosts: tuple[str, ...] = ()
    locustfile: str | None = None
    max_inflight: int | None = None
    run_id: str | None = None
    write_report: bool = True
    command: str = ""
    require_metrics: bool = False
    """A guard whose query returns no series at the preflight stops the run before stage 1 (exit 2)."""
    stage_check: StageCheck | None = None
    """``capacity scale``: the app task count drifted during the stage -> ``invalid: task drift``."""
