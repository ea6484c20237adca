"""Which of Debian's packages the real Puma + Sidekiq + Redis stack needs, and which are missing.

The stack runs the distribution's own Redis, Puma and Sidekiq (no gems are fetched), so a missing
piece is a user error naming the packages and the ``apt-get install`` line that adds them.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from capacity.core.errors import CapacityError

PACKAGES: tuple[str, ...] = ("redis-server", "puma", "ruby-sidekiq", "ruby-rack", "ruby-redis")
"""Debian 12 ships puma 5.6, sidekiq 6.4, rack 2.2 and redis-rb 4.8; the Ruby files target those."""

RAILS_PACKAGES: tuple[str, ...] = (*PACKAGES, "ruby-rails", "ruby-pg", "postgresql")
"""``--stack rails`` adds Debian 12's Rails 6.1, the pg gem and PostgreSQL 15 (``/usr/lib/postgresql/15``)."""

_EXECUTABLES = {"redis-server": "redis-server", "puma": "puma", "ruby-sidekiq": "sidekiq", "postgresql": "psql"}
_RUBY_LIBS = {
    "ruby-rack": "rack",
    "ruby-redis": "redis",
    "ruby-sidekiq": "sidekiq",
    "ruby-rails": "rails",
    "ruby-pg": "pg",
}
_POSTGRES_SERVER = Path("/usr/lib/postgresql/15/bin/postgres")


class StackMissingError(CapacityError):
    """A package the real stack needs is not installed (exit 2, like any unusable environment)."""


def _ruby_lib_missing(lib: str) -> bool:
    ruby = shutil.which("ruby")
    if ruby is None:
        return True
    done = subprocess.run([ruby, "-e", f"require '{lib}'"], capture_output=True, timeout=30, check=False)
    return done.returncode != 0


def missing_packages(packages: tuple[str, ...] = PACKAGES) -> list[str]:
    """The Debian packages of ``packages`` whose executable or Ruby library cannot be found."""
    wanted = set(packages)
    missing = {pkg for pkg, exe in _EXECUTABLES.items() if pkg in wanted and shutil.which(exe) is None}
    if "postgresql" in wanted and not _POSTGRES_SERVER.is_file():
        missing.add("postgresql")
    missing |= {
        pkg for pkg, lib in _RUBY_LIBS.items() if pkg in wanted and pkg not in missing and _ruby_lib_missing(lib)
    }
    return [p for p in packages if p in missing]


def install_hint(missing: list[str], stack: str = "puma") -> str:
    """One line naming the missing packages and how to add them."""
    names = " ".join(missing)
    return (
        f"--stack {stack} needs Debian packages not installed here: {names} (install: sudo apt-get install -y {names})"
    )


def require_packages() -> None:
    """Raise ``StackMissingError`` (one line, exit 2) unless every package is there."""
    missing = missing_packages()
    if missing:
        raise StackMissingError(install_hint(missing))


def require_rails_packages() -> None:
    """The same for ``--stack rails`` (``RAILS_PACKAGES``)."""
    missing = missing_packages(RAILS_PACKAGES)
    if missing:
        raise StackMissingError(install_hint(missing, "rails"))
