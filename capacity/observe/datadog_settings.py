"""The Datadog source's settings, one object per concern: where and with which keys, what is asked and
how answers become figures, how calls are retried, how long a stage's metrics are waited for.

Frozen dataclasses, built once per run (``capacity.observe.source.build_source``) or in a test.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from capacity.observe.agent_checks import AgentSemantics
from capacity.observe.queries import LATE_PREFIXES


@dataclass(frozen=True)
class DatadogEndpoint:
    """One Datadog site (or a Datadog-compatible endpoint) and its keys; the keys never show in a repr."""

    host: str
    api_key: str = field(repr=False)
    app_key: str = field(repr=False)
    key_names: tuple[str, str] = ("DD_API_KEY", "DD_APP_KEY")
    """How an error names the keys (the variables they came from, or what the sandbox calls them)."""


@dataclass(frozen=True)
class QueryPlan:
    """One experiment's queries and how their answers become a stage's figures."""

    queries: dict[str, str]
    rollup_s: int = 10
    rollups: dict[str, int] = field(default_factory=dict)
    """Name -> the rollup its query is read at (its metric's emission interval or more); else ``rollup_s``."""
    divisors: dict[str, float] = field(default_factory=dict)
    """Name -> what its values are divided by (Fargate CPU: the task's vCPUs)."""
    max_threads: float | None = None
    """Puma threads per task from ``[cluster]``, when the metric does not report them."""
    semantics: AgentSemantics = field(default_factory=AgentSemantics)
    """The agent's ways (absent limits and empty queues, collapsed tags): ``agent_checks``."""
    late_prefixes: tuple[str, ...] = LATE_PREFIXES
    """Metric prefixes that arrive late (CloudWatch): fetched, never waited for."""


@dataclass(frozen=True)
class RetryPolicy:
    """Capped retries, done here because the client's own sleeps ``X-RateLimit-Reset`` uncapped and does not
    retry read timeouts: exponential backoff for 5xx and timeouts, the reset header (capped) for 429."""

    max_retries: int = 3
    backoff_s: float = 0.5
    backoff_cap_s: float = 8.0
    rate_limit_cap_s: float = 30.0
    connect_timeout_s: float = 5.0
    read_timeout_s: float = 15.0

    def wait_s(self, attempt: int, *, rate_limited: bool, reset: str | None) -> float:
        """How long to wait before retry ``attempt + 1``; ``reset``: a 429's ``X-RateLimit-Reset`` header."""
        backoff = min(self.backoff_cap_s, self.backoff_s * (2**attempt))
        if not rate_limited:
            return backoff
        try:
            wait = float(reset) if reset is not None else backoff
        except ValueError:
            wait = backoff
        return max(0.0, min(wait, self.rate_limit_cap_s))


@dataclass(frozen=True)
class PollSettings:
    """How long a stage's metrics are waited for after its end, and how often they are asked for."""

    deadline_s: float = 90.0
    interval_s: float = 5.0
