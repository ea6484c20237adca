"""Ctrl-C and SIGTERM between stages: remember the request, let the runner finish cleanly.

Raising from a signal handler under gevent lands in whichever greenlet runs, so the handler only
sets a flag; the runner checks it between steps (the load driver has its own handlers during a
stage and reports ``interrupted`` on its measurement).
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType


class InterruptFlag:
    def __init__(self) -> None:
        self._event = threading.Event()
        self.signal_name: str | None = None

    def set(self, name: str) -> None:
        self.signal_name = name
        self._event.set()

    def __bool__(self) -> bool:
        return self._event.is_set()


@contextmanager
def catch_interrupts() -> Iterator[InterruptFlag]:
    """Install SIGINT/SIGTERM handlers that set a flag; restore the previous ones on exit."""
    flag = InterruptFlag()

    def handler(signum: int, _frame: FrameType | None) -> None:
        flag.set(signal.Signals(signum).name)

    previous = {}
    in_main = threading.current_thread() is threading.main_thread()
    if in_main:
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.getsignal(sig)
            signal.signal(sig, handler)
    try:
        yield flag
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
