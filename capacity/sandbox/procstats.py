"""Per-process facts a Fargate task reports (CPU %, RSS) and the no-orphans safety net."""

from __future__ import annotations

import ctypes
import os
import signal
import sys

import psutil

_PR_SET_PDEATHSIG = 1


def die_with_parent(sig: int = signal.SIGTERM) -> None:
    """Ask Linux to send ``sig`` to this process when its parent exits (no-op elsewhere)."""
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0)
    except (OSError, AttributeError):
        pass


class ProcessSampler:
    """CPU % since the previous sample (100 = one core busy) and resident memory in bytes."""

    def __init__(self, pid: int | None = None) -> None:
        self._proc = psutil.Process(pid or os.getpid())
        self._proc.cpu_percent(None)

    def sample(self) -> tuple[float, int]:
        with self._proc.oneshot():
            return self._proc.cpu_percent(None), int(self._proc.memory_info().rss)

    def page_cache(self) -> int:
        """Resident file-backed pages (Linux ``shared``): the page cache inside RSS, 0 where unknown.

        The agent's ``ecs.fargate.mem.usage`` is the cgroup's usage, page cache included; the part
        the kernel can drop is reported apart as ``ecs.fargate.mem.cache``.
        """
        return int(getattr(self._proc.memory_info(), "shared", 0))
