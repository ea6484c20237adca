"""The sandbox: a local stand-in for Clinician Workflow whose capacity follows from its parameters.

``SandboxConfig`` holds the parameters, ``truth(config)`` the capacity they imply, and
``run_sandbox(config)`` starts it (supervisor + app tasks + Sidekiq-like workers) for a ``with`` block.
"""

from capacity.sandbox.config import ENDPOINTS, SandboxConfig, SandboxConfigError
from capacity.sandbox.runner import RunningSandbox, run_sandbox
from capacity.sandbox.truth import SandboxTruth, default_mix, truth

__all__ = [
    "ENDPOINTS",
    "RunningSandbox",
    "SandboxConfig",
    "SandboxConfigError",
    "SandboxTruth",
    "default_mix",
    "run_sandbox",
    "truth",
]
