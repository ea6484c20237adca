"""Shared test helpers: run the CLI as a user would (a subprocess), find repo paths."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from capacity.load.patching import patch_gevent

patch_gevent()  # tests drive load in-process: gevent must patch ssl/socket before anything imports them

REPO = Path(__file__).resolve().parent.parent


def run_cli(
    *args: str, cwd: Path | None = None, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """``capacity ARGS`` in a fresh interpreter: exit codes and stderr exactly as a user sees them."""
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": "200", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "capacity", *args],
        cwd=cwd or REPO,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.fixture
def repo() -> Path:
    return REPO
