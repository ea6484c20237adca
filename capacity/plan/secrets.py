"""``${NAME}`` references in ``[target]``, filled from the environment at the edge, and their redaction.

The experiment model always keeps the reference as written: it is what ``manifest.json``, ``run.log``,
the report and every printed line show. Values are substituted only where a request is built (the
driver's base URL, headers and token command), and every value substituted (and every token fetched)
is registered with the process's redactor, which error messages and response excerpts pass through
(docs/design.md, "Authentication and secrets").
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field

from capacity.core.errors import ExperimentError

REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
"""An environment reference: ``${NAME}``."""
MASK = "***"
MIN_SECRET_LEN = 4
"""Shorter values are not redacted: masking every "1" or "on" would garble messages and hide nothing."""


def references(text: str) -> list[str]:
    """The variable names ``text`` refers to, in order."""
    return REF.findall(text)


def expand(text: str, *, env: Mapping[str, str] | None = None, file: str | None = None, key: str | None = None) -> str:
    """``text`` with every ``${NAME}`` replaced from the environment; a missing one is an error naming it.

    Each value is registered with the redactor, so it never reaches a printed line or a stored file.
    """
    source = os.environ if env is None else env
    missing = [n for n in references(text) if n not in source]
    if missing:
        raise ExperimentError(
            f"environment variable {missing[0]} is not set (the file refers to ${{{missing[0]}}})", file=file, key=key
        )

    def value(m: re.Match[str]) -> str:
        v = source[m.group(1)]
        REDACTOR.add(v)
        return v

    return REF.sub(value, text)


@dataclass
class Redactor:
    """Replaces every registered secret value in a text with ``***`` (longest first)."""

    _values: set[str] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, value: str) -> None:
        v = value.strip()
        if len(v) >= MIN_SECRET_LEN:
            with self._lock:
                self._values.add(v)

    def __call__(self, text: str) -> str:
        for v in sorted(self._values, key=len, reverse=True):
            if v in text:
                text = text.replace(v, MASK)
        return text

    def clear(self) -> None:
        with self._lock:
            self._values.clear()


REDACTOR = Redactor()
"""The process's redactor: one per process, because a secret once resolved must stay hidden everywhere."""


def redact(text: str) -> str:
    """``text`` with every secret value resolved in this process replaced by ``***``."""
    return REDACTOR(text)
