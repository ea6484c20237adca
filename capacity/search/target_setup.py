"""Where the load goes: the host allow-list, and the built-in sandbox started for ``sandbox://`` targets."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

from capacity.core.errors import ExperimentError
from capacity.plan.experiment import Experiment
from capacity.plan.secrets import expand


def check_allowed_host(exp: Experiment, base_url: str, extra_allowed: tuple[str, ...] = ()) -> None:
    """Refuse any target host not in the experiment's allow-list or ``--allow-host``.

    A capacity search is deliberately harmful load: a typo in a URL must not point it at production.
    """
    host = (urlsplit(base_url).hostname or "").lower()
    hosts = (expand(h, file=exp.source_file, key="target.allowed_hosts") for h in exp.target.allowed_hosts)
    allowed = {h.lower() for h in (*hosts, *extra_allowed)}
    if host not in allowed:
        raise ExperimentError(
            f"target host {host!r} is not in allowed_hosts {sorted(allowed)}; add it there or pass --allow-host {host}",
            file=exp.source_file,
            key="target.allowed_hosts",
        )


@contextmanager
def resolve_target(exp: Experiment) -> Iterator[tuple[str, dict[str, Any] | None]]:
    """Yield (base URL, truth); for ``sandbox://`` start the built-in sandbox for the block's duration."""
    if not exp.target.is_sandbox:
        yield exp.target.base_url, None
        return
    from capacity.sandbox import run_sandbox, truth
    from capacity.sandbox.config import sandbox_config_for

    config = sandbox_config_for(exp)
    with run_sandbox(config) as sb:
        # the Rails stack has no formula: Rails, its pool and the database set the limits
        yield sb.base_url, (None if config.stack == "rails" else truth(config).as_dict())
