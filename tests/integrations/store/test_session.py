"""The request's store session: reads never keep a pooled connection, and a failed read leaves it usable."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import event, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlmodel import col, select

from integrations.errors import StoreUnavailableError
from integrations.store.engine import create_engine, create_sessionmaker
from integrations.store.models import Customer
from integrations.store.records import KEYS, CustomerRecord, as_records, select_by_keys
from integrations.store.session import StoreSession


@pytest.fixture
async def one_connection(store_url: str) -> AsyncIterator[AsyncEngine]:
    """A pool of exactly one connection that gives up after a second: any hold-and-wait fails fast."""
    engine = create_async_engine(store_url, pool_size=1, max_overflow=0, pool_timeout=1)
    yield engine
    await engine.dispose()


async def add_customer(store: StoreSession, email: str) -> None:
    async with store.transaction() as session:
        session.add(Customer(email=email, name="Ada"))


async def test_a_read_gives_its_connection_back_before_returning(engine: AsyncEngine, store: StoreSession) -> None:
    await add_customer(store, "ada@example.com")
    assert [c.email for c in await store.scalars(select(Customer))] == ["ada@example.com"]
    assert engine.pool.checkedout() == 0  # type: ignore[attr-defined]


async def test_another_session_of_the_same_pool_can_run_between_two_reads(one_connection: AsyncEngine) -> None:
    """The deadlock this prevents: a request holding its connection while a provider needs one of the pool."""
    sessionmaker = create_sessionmaker(one_connection)
    store = StoreSession(sessionmaker)
    try:
        await add_customer(store, "ada@example.com")
        first = await store.scalar(select(Customer))
        async with sessionmaker() as other:  # times out if the store still held the only connection
            assert await other.scalar(select(Customer.email)) == "ada@example.com"
        assert first is not None
        assert await store.scalar(select(Customer.name).where(col(Customer.id) == first.id)) == "Ada"
    finally:
        await store.close()


async def test_a_failed_read_leaves_the_session_and_its_rows_usable(engine: AsyncEngine, store: StoreSession) -> None:
    await add_customer(store, "ada@example.com")
    ada = await store.scalar(select(Customer))
    with pytest.raises(DBAPIError):
        await store.rows(text("SELECT no_such_column FROM customer"))
    assert ada is not None
    assert ada.name == "Ada"  # still loaded: no lazy refresh (which would fail outside a greenlet)
    assert await store.scalar(select(Customer.email)) == "ada@example.com"
    assert engine.pool.checkedout() == 0  # type: ignore[attr-defined]


async def test_concurrent_reads_reuse_the_pools_connections(sqlite_url: str) -> None:
    """Connections are kept up to the pool size: SQLite's default pool kept 5 and reopened the rest, each in a new
    thread with its PRAGMAs, whenever more requests than that read at once."""
    engine = create_engine(sqlite_url, pool_size=8)
    connects = 0

    def count(*_args: object) -> None:
        nonlocal connects
        connects += 1

    event.listen(engine.sync_engine, "connect", count)
    sessionmaker = create_sessionmaker(engine)
    try:
        for _ in range(5):
            stores = [StoreSession(sessionmaker) for _ in range(8)]
            await asyncio.gather(*(store.rows(text("SELECT 1")) for store in stores))
            await asyncio.gather(*(store.close() for store in stores))
        assert engine.pool.checkedout() == 0  # type: ignore[attr-defined]
    finally:
        await engine.dispose()
    assert 1 <= connects <= 8


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_records_are_read_without_an_explicit_transaction_on_postgresql(
    engine: AsyncEngine, store: StoreSession
) -> None:
    """A single SELECT in autocommit: asyncpg sends no BEGIN before it (and no ROLLBACK after)."""
    in_transaction: list[bool] = []

    def observe(connection: Any, *_args: Any) -> None:
        in_transaction.append(connection.connection.driver_connection.is_in_transaction())

    event.listen(engine.sync_engine, "after_cursor_execute", observe)
    try:
        assert await store.records(select(Customer.id).limit(1), int) == []
        await store.scalars(select(Customer).limit(1))  # the ORM session's reads, for contrast, are in one
    finally:
        event.remove(engine.sync_engine, "after_cursor_execute", observe)
    assert in_transaction == [False, True]


class CountingSessions:
    """The store's sessionmaker, counting the ORM sessions made."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.sessionmaker = create_sessionmaker(engine)
        self.kw = self.sessionmaker.kw
        self.made = 0

    def __call__(self) -> Any:
        self.made += 1
        return self.sessionmaker()


async def test_a_request_that_reads_only_records_makes_no_orm_session(engine: AsyncEngine) -> None:
    """Making and closing an unused AsyncSession was a good part of a small request's fixed cost."""
    sessions = CountingSessions(engine)
    store = StoreSession(sessions)  # type: ignore[arg-type]
    try:
        await store.records(select_by_keys(CustomerRecord, "id", engine.dialect.name), CustomerRecord, {KEYS: [1]})
        await store.records(*as_records(select(Customer).limit(3)))  # type: ignore[misc]
        assert sessions.made == 0
        await store.scalars(select(Customer))
        await add_customer(store, "ada@example.com")
        assert sessions.made == 1  # one for the request, made when first needed
    finally:
        await store.close()


class Unreachable(CountingSessions):
    """A sessionmaker whose sessions cannot be made (the database went away)."""

    def __call__(self) -> Any:
        self.made += 1
        raise ConnectionRefusedError("the database went away")


async def test_a_session_that_cannot_be_made_fails_once_as_unavailable(engine: AsyncEngine) -> None:
    sessions = Unreachable(engine)
    store = StoreSession(sessions)  # type: ignore[arg-type]
    try:
        with pytest.raises(StoreUnavailableError):
            await add_customer(store, "ada@example.com")
        assert sessions.made == 1
        with pytest.raises(StoreUnavailableError):
            await store.scalars(select(Customer))
        assert sessions.made == 2
    finally:
        await store.close()
