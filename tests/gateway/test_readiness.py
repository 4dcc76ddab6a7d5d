"""/readyz reports each dependency by name: the database always, Redis when REDIS_URL is set."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest
from redis.asyncio import Redis
from redis.exceptions import RedisError

from gateway.app import create_app
from gateway.settings import load_settings
from tests.support.services import unavailable

REDIS_URL = "redis://127.0.0.1:6379/0"


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@asynccontextmanager
async def serving(**settings: str) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(load_settings(_env_file=None, **settings))
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as http,
    ):
        yield http


@pytest.fixture
async def redis_url() -> str:
    client = Redis.from_url(REDIS_URL, socket_connect_timeout=1)
    try:
        await client.ping()
    except (RedisError, OSError) as exc:
        unavailable(f"Redis not reachable at {REDIS_URL}: {exc}")
    finally:
        await client.aclose()
    return REDIS_URL


async def test_ready_with_database_and_redis(sqlite_url: str, redis_url: str) -> None:
    async with serving(DATABASE_URL=sqlite_url, REDIS_URL=redis_url) as http:
        response = await http.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "checks": {"database": "ok", "redis": "ok"}}


async def test_not_ready_when_redis_is_down(sqlite_url: str) -> None:
    async with serving(DATABASE_URL=sqlite_url, REDIS_URL=f"redis://127.0.0.1:{closed_port()}/0") as http:
        response = await http.get("/readyz")
    assert response.status_code == 503
    checks = response.json()["checks"]
    assert checks["database"] == "ok"
    assert checks["redis"].startswith("unavailable")


async def test_not_ready_when_the_database_is_unreachable_but_queries_fail_cleanly() -> None:
    url = f"postgresql+asyncpg://postgres@127.0.0.1:{closed_port()}/nowhere"
    async with serving(DATABASE_URL=url) as http:
        assert (await http.get("/healthz")).status_code == 200
        response = await http.get("/readyz")
        assert response.status_code == 503
        assert response.json()["checks"]["database"].startswith("unavailable")

        query = await http.post("/graphql", json={"query": "{ customers { totalCount } }"})
        assert query.status_code == 200
        error = query.json()["errors"][0]
        assert error["extensions"]["code"] == "SERVICE_UNAVAILABLE"
        assert "Traceback" not in error["message"]
