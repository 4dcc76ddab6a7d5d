"""A pooled PostgreSQL connection is pinged on checkout only after it sat unused (`engine._ping_if_idle`)."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from integrations.store.engine import create_engine
from tests.conftest import postgres_admin_execute


async def backend_pid(engine: AsyncEngine) -> int:
    async with engine.connect() as connection:
        return int((await connection.execute(text("SELECT pg_backend_pid()"))).scalar_one())


async def terminate(pid: int) -> None:
    """Kill the server side of a pooled connection, as a restart or an idle timeout would."""
    await postgres_admin_execute(f"SELECT pg_terminate_backend({pid}, 5000)")


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_an_idle_connection_that_went_away_is_replaced_before_use(store_url: str) -> None:
    engine = create_engine(store_url, pool_size=1, ping_idle_after=0.0)  # every checkout counts as idle
    try:
        pid = await backend_pid(engine)
        await terminate(pid)
        assert await backend_pid(engine) != pid  # the ping failed, the pool connected anew, the statement ran
    finally:
        await engine.dispose()


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_a_connection_used_a_moment_ago_is_not_pinged(store_url: str) -> None:
    engine = create_engine(store_url, pool_size=1, ping_idle_after=3600.0)
    try:
        pid = await backend_pid(engine)
        await terminate(pid)
        with pytest.raises(DBAPIError) as failed:  # no ping: the statement itself meets the closed connection
            await backend_pid(engine)
        assert failed.value.connection_invalidated
        assert await backend_pid(engine) != pid  # and the pool has replaced it for the next one
    finally:
        await engine.dispose()
