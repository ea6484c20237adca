"""Load tests: loopback servers only, every stage bounded in time."""

from __future__ import annotations

from collections.abc import Iterator

import locust  # noqa: F401  (gevent patching before anything imports ssl)
import pytest

from tests.load.servers import DelayServer


@pytest.fixture
def slow_server() -> Iterator[DelayServer]:
    with DelayServer(0.3) as srv:
        yield srv


@pytest.fixture
def fast_server() -> Iterator[DelayServer]:
    with DelayServer(0.0) as srv:
        yield srv
