"""Fixtures shared by the cache store tests: a random key prefix and redis-servers of their own."""

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


@pytest.fixture(scope="module")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A single-node Redis Cluster serving every slot."""
    with run_redis_server(cluster_dir=tmp_path_factory.mktemp("redis-cluster")) as server:
        yield server
