"""Failover tests: moto's server as the ECS API (the scale tests' fixture) and the sandbox's own tasks."""

from __future__ import annotations

from capacity.load.patching import patch_gevent

patch_gevent()  # before boto3/urllib3 import ssl: these tests drive load

from tests.scale.conftest import aws, moto_url  # noqa: E402,F401  (the fixtures, shared)
