"""The sandbox's real stack (``--stack puma``): Debian's Redis, Puma and Sidekiq behind the sandbox front.

``PumaStack`` runs it (same lifecycle and front backend as the Python ``Supervisor``),
``AgentCollector`` publishes what the Datadog agent would, and ``missing_packages`` says which Debian
packages are not installed. The Ruby side (Rack app, Puma config, Sidekiq job) is in ``ruby/``;
``RailsStack`` (``--stack rails``) runs a Rails API on PostgreSQL instead (``ruby/rails/``).
"""

from capacity.sandbox.stack.collector import AgentCollector
from capacity.sandbox.stack.debian import (
    PACKAGES,
    RAILS_PACKAGES,
    StackMissingError,
    install_hint,
    missing_packages,
)
from capacity.sandbox.stack.puma import PumaStack
from capacity.sandbox.stack.rails import RailsStack

__all__ = [
    "PACKAGES",
    "RAILS_PACKAGES",
    "AgentCollector",
    "PumaStack",
    "RailsStack",
    "StackMissingError",
    "install_hint",
    "missing_packages",
]
