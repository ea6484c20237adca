"""Shared test helpers: the CLI as a user runs it (a subprocess, or in-process), repo paths, builders."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from capacity.load.patching import patch_gevent

patch_gevent()  # tests drive load in-process: gevent must patch ssl/socket before anything imports them

from tests.helpers import CliResult, invoke_cli  # noqa: E402  (the builders live there; after the patch)

REPO = Path(__file__).resolve().parent.parent

Cli = Callable[..., CliResult]
"""The type of the ``cli`` fixture."""


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


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Cli:
    """``cli(*args)``: the CLI in-process, seen as :func:`run_cli` sees it (200 columns) but without
    a fresh interpreter's start-up. Keep :func:`run_cli` where the real process's exit is the point."""
    monkeypatch.setenv("COLUMNS", "200")

    def run(*args: str) -> CliResult:
        return invoke_cli(capsys, *args)

    return run
