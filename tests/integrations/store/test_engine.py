"""A pooled PostgreSQL connection is pinged on checkout only after it sat unused (`engine._ping_if_idle`), and a
read that meets a connection the server dropped is run again on a new one (`StoreSession._retried`)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from sqlalchemy import event, func, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from integrations.store.engine import create_engine, create_sessionmaker
from integrations.store.session import StoreSession
from tests.conftest import postgres_admin_execute

pytestmark = pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)


@asynccontextmanager
async def pool_of_one(store_url: str, ping_idle_after: float) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(store_url, pool_size=1, ping_idle_after=ping_idle_after)
    try:
        yield engine
    finally:
        await engine.dispose()


async def backend_pid(engine: AsyncEngine) -> int:
    async with engine.connect() as connection:
        return int((await connection.execute(text("SELECT pg_backend_pid()"))).scalar_one())


async def terminate(pid: int) -> None:
    """Kill the server side of a pooled connection, as a restart or an idle timeout would."""
    await postgres_admin_execute(f"SELECT pg_terminate_backend({pid}, 5000)")


async def test_an_idle_connection_that_went_away_is_replaced_before_use(store_url: str) -> None:
    async with pool_of_one(store_url, ping_idle_after=0.0) as engine:  # every checkout counts as idle
        pid = await backend_pid(engine)
        await terminate(pid)
        assert await backend_pid(engine) != pid  # the ping failed, the pool connected anew, the statement ran


async def test_a_connection_used_a_moment_ago_is_not_pinged(store_url: str) -> None:
    async with pool_of_one(store_url, ping_idle_after=3600.0) as engine:
        pid = await backend_pid(engine)
        await terminate(pid)
        with pytest.raises(DBAPIError) as failed:  # no ping: the statement itself meets the closed connection
            await backend_pid(engine)
        assert failed.value.connection_invalidated
        assert await backend_pid(engine) != pid  # and the pool has replaced it for the next one


async def test_the_ping_leaves_no_transaction_open(store_url: str) -> None:
    async with pool_of_one(store_url, ping_idle_after=0.0) as engine, engine.connect() as connection:  # pinged
        raw = await connection.get_raw_connection()
        assert raw.driver_connection is not None
        assert not raw.driver_connection.is_in_transaction()


async def test_a_store_read_on_a_connection_that_went_away_is_run_again(store_url: str) -> None:
    async with pool_of_one(store_url, ping_idle_after=3600.0) as engine:  # no ping: the read meets it
        store = StoreSession(create_sessionmaker(engine))
        try:
            pid = await backend_pid(engine)
            await terminate(pid)
            assert await store.records(select(func.pg_backend_pid()), int) != [pid]
            await terminate((await store.scalars(select(func.pg_backend_pid())))[0])
            assert len(await store.scalars(select(func.pg_backend_pid()))) == 1  # through the ORM session too
        finally:
            await store.close()


async def test_a_worker_serving_16_requests_at_once_keeps_its_connections(store_url: str) -> None:
    """The default pool covers the bench's 16 concurrent requests: a connection lent beyond the pool's size is
    closed when it comes back, so waves of 16 reads at once would each open (and close) connections again."""
    engine = create_engine(store_url)
    connects = 0

    def connected(*_args: object) -> None:
        nonlocal connects
        connects += 1

    event.listen(engine.sync_engine.pool, "connect", connected)
    try:

        async def read() -> None:
            async with engine.connect() as connection:
                await connection.execute(text("SELECT pg_sleep(0.01)"))

        for _wave in range(5):
            await asyncio.gather(*(read() for _ in range(16)))
    finally:
        await engine.dispose()
    assert connects == 16
