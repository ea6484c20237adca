"""No orphans: every sandbox process ends with the block, and also when its parent is killed."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from capacity.sandbox import SandboxConfig, run_sandbox

CFG = SandboxConfig(app_tasks=2, sidekiq_tasks=1, records=10)

PARENT = """
import json, sys, time
from capacity.sandbox import SandboxConfig, run_sandbox
with run_sandbox(SandboxConfig(app_tasks=2, sidekiq_tasks=1, records=10)) as sb:
    print(json.dumps(list(sb.pids)), flush=True)
    time.sleep(60)
"""


def _alive(pid: int) -> bool:
    """Running (not a zombie); a process that exits while we look counts as gone."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _gone(pids: list[int], within: float) -> list[int]:
    deadline = time.monotonic() + within
    alive = pids
    while time.monotonic() < deadline:
        alive = [p for p in pids if _alive(p)]
        if not alive:
            return []
        time.sleep(0.1)
    return alive


def test_block_exit_stops_every_process() -> None:
    with run_sandbox(CFG) as sb:
        pids = list(sb.pids)
        assert len(pids) == 4  # supervisor + 2 app + 1 worker
        assert all(psutil.pid_exists(p) for p in pids)
    assert _gone(pids, 5) == []


def test_exception_in_block_stops_every_process() -> None:
    pids: list[int] = []
    with pytest.raises(RuntimeError), run_sandbox(CFG) as sb:
        pids = list(sb.pids)
        raise RuntimeError("boom")
    assert _gone(pids, 5) == []


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL, signal.SIGINT])
def test_parent_killed_leaves_no_orphans(tmp_path: Path, sig: signal.Signals) -> None:
    script = tmp_path / "parent.py"
    script.write_text(PARENT)
    parent = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    try:
        assert parent.stdout is not None
        pids = json.loads(parent.stdout.readline())
        assert len(pids) == 4
        parent.send_signal(sig)
        parent.wait(timeout=15)
        assert _gone(pids, 8) == []
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()
