"""Load tests: loopback servers only, every stage bounded in time."""

from __future__ import annotations

from collections.abc import Iterator

from capacity.load.patching import patch_gevent

patch_gevent()  # before anything imports ssl: these tests drive load

import pytest  # noqa: E402

from tests.load.servers import DelayServer  # noqa: E402


@pytest.fixture
def slow_server() -> Iterator[DelayServer]:
    with DelayServer(0.3) as srv:
        yield srv


@pytest.fixture
def fast_server() -> Iterator[DelayServer]:
    with DelayServer(0.0) as srv:
        yield srv
