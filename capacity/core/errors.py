"""Errors a user can fix. The CLI turns each into one line on stderr and exit code 2."""

from __future__ import annotations


class CapacityError(Exception):
    """Bad input or an unusable environment: the message is one line naming what and where."""

    exit_code = 2


class ExperimentError(CapacityError):
    """An experiment file (or the flags standing in for one) is invalid."""

    def __init__(self, message: str, *, file: str | None = None, key: str | None = None) -> None:
        where = ", ".join(p for p in (file, f"key '{key}'" if key else None) if p)
        super().__init__(f"{where}: {message}" if where else message)
        self.file = file
        self.key = key


class TargetUnreachableError(CapacityError):
    """The target did not answer before stage 1; nothing was sent at load."""


class MetricsAuthError(CapacityError):
    """The metrics source refused our credentials (never includes the key itself)."""
