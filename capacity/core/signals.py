"""Ctrl-C and SIGTERM: remember the request so the caller can stop cleanly at a point of its choosing.

Raising from a signal handler under gevent lands in whichever greenlet runs, so the handler only
sets a flag. The search runner checks it between steps; the load driver installs its own for the
duration of a stage and stops the stage within a second (nested: the previous handlers return after).
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

    @property
    def hit(self) -> str | None:
        """The signal's name once one arrived, else None."""
        return self.signal_name if self._event.is_set() else None


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
