"""Fixtures of the rate limiter tests: a random key prefix and a redis-server of their own to stop and restart."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from tests.support.redis_server import RedisServer, run_redis_server


@pytest.fixture
def prefix() -> str:
    return f"test:{uuid.uuid4().hex[:12]}:"


@pytest.fixture(scope="module")
def redis_server() -> Iterator[RedisServer]:
    """A redis-server for one test module, which its tests may stop, freeze and start again."""
    with run_redis_server() as server:
        yield server


@pytest.fixture
def running_redis(redis_server: RedisServer) -> RedisServer:
    """The module's redis-server, started again if an earlier test left it stopped."""
    return redis_server.ensure_started()
