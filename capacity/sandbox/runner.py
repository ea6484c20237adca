"""``run_sandbox``: start the sandbox in its own process group of processes and stop all of it after.

The supervisor runs as a child process (so the caller's event loop, gevent patching or signal
handlers are untouched). It follows its parent: if the caller dies, even by SIGKILL, the supervisor
notices (Linux parent-death signal, plus a parent-pid watch) and stops its tasks.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from capacity.core.errors import CapacityError
from capacity.sandbox.config import SandboxConfig

READY_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class RunningSandbox:
    """A started sandbox: where it listens and which processes make it up."""

    port: int
    config: SandboxConfig
    supervisor_pid: int
    task_pids: tuple[int, ...] = field(default=())

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def query_url(self) -> str:
        """The Datadog-compatible v1 query endpoint (use ``base_url`` as the client's host)."""
        return f"{self.base_url}/api/v1/query"

    @property
    def pids(self) -> tuple[int, ...]:
        """Every process of the sandbox: the supervisor first, then its app and worker tasks."""
        return (self.supervisor_pid, *self.task_pids)


def _package_root() -> str:
    return str(Path(__file__).resolve().parents[2])


def _read_ready(proc: subprocess.Popen[bytes], err_path: Path, timeout: float) -> dict[str, object]:
    """The supervisor's ready line, or a CapacityError carrying its one-line complaint."""
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    buf = b""
    fd = proc.stdout.fileno()
    while b"\n" not in buf:
        left = deadline - time.monotonic()
        if left <= 0:
            raise CapacityError(f"sandbox did not start within {timeout:.0f} s")
        ready, _, _ = select.select([fd], [], [], min(left, 0.5))
        if ready:
            chunk = os.read(fd, 4096)
            if not chunk:
                break
            buf += chunk
        elif proc.poll() is not None:
            break
    if b"\n" not in buf:
        proc.wait(timeout=5)
        lines = [ln for ln in err_path.read_text(errors="replace").splitlines() if ln.strip()]
        msg = next((ln for ln in reversed(lines) if ln.startswith("capacity: error: ")), None)
        if msg:
            raise CapacityError(msg.removeprefix("capacity: error: "))
        tail = lines[-1] if lines else "no output"
        raise CapacityError(f"sandbox exited during start (code {proc.returncode}): {tail}")
    return dict(json.loads(buf.split(b"\n", 1)[0]))


def _wait_health(base_url: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{base_url}/health", timeout=2) as resp:
                if resp.status == 200:
                    return
        except (urllib.error.URLError, OSError) as exc:
            last = str(exc)
        time.sleep(0.05)
    raise CapacityError(f"sandbox at {base_url} did not answer /health within {timeout:.0f} s ({last})")


def _reap(proc: subprocess.Popen[bytes], task_pids: tuple[int, ...]) -> None:
    """Stop the supervisor (it stops its tasks), then kill any task that is somehow still there."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
    for pid in task_pids:
        with contextlib.suppress(psutil.Error):
            p = psutil.Process(pid)
            if "capacity.sandbox" in " ".join(p.cmdline()):
                p.kill()
                p.wait(timeout=5)


@contextlib.contextmanager
def run_sandbox(config: SandboxConfig, port: int = 0) -> Iterator[RunningSandbox]:
    """Start every sandbox process on 127.0.0.1 (``port=0``: a free one), wait for /health, and stop
    them all when the block ends (also on exceptions and KeyboardInterrupt)."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (_package_root(), env.get("PYTHONPATH", "")) if p)
    with tempfile.TemporaryDirectory(prefix="capacity-sandbox-run-") as tmp:
        err_path = Path(tmp) / "supervisor.err"
        with err_path.open("wb") as err:
            proc = subprocess.Popen(
                [sys.executable, "-m", "capacity.sandbox.supervisor", str(port), str(os.getpid())],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=err,
                env=env,
            )
        task_pids: tuple[int, ...] = ()
        try:
            assert proc.stdin is not None
            proc.stdin.write((config.to_json() + "\n").encode())
            proc.stdin.close()
            info = _read_ready(proc, err_path, READY_TIMEOUT_S)
            task_pids = tuple(int(p) for p in info.get("pids", []))  # type: ignore[attr-defined]
            sandbox = RunningSandbox(int(info["port"]), config, proc.pid, task_pids)  # type: ignore[call-overload]
            _wait_health(sandbox.base_url, READY_TIMEOUT_S)
            yield sandbox
        finally:
            _reap(proc, task_pids)
            if proc.stdout is not None:
                proc.stdout.close()
