"""Direct reads (`integrations/store/direct.py`): the loaders' constant statements run on the driver give what
SQLAlchemy gives, are seen by every statement observer, and fall back to SQLAlchemy when the driver call fails,
never handing a broken connection back to the pool."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import event, func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.util import greenlet_spawn

from integrations.store.direct import DIRECT, direct_read, observe_direct_reads
from integrations.store.engine import create_engine, create_sessionmaker
from integrations.store.records import (
    KEYS,
    CustomerRecord,
    OrderLineRecord,
    OrderRecord,
    ProductRecord,
    Record,
    select_by_keys,
)
from integrations.store.session import StoreSession
from integrations.store.statements import observe_statements
from resolvers.seed import SeedSize, seed
from tests.conftest import postgres_admin_execute

KEYED: list[tuple[type[Record], str]] = [
    (CustomerRecord, "id"),
    (ProductRecord, "id"),
    (OrderRecord, "id"),
    (OrderLineRecord, "id"),
    (OrderLineRecord, "order_id"),
    (OrderRecord, "customer_id"),
]


@pytest.fixture
async def seeded(store: StoreSession) -> StoreSession:
    await seed(store, SeedSize(customers=4, products=3, orders=6, lines_per_order=2))
    return store


async def through_sqlalchemy(engine: AsyncEngine, statement: Any, keys: list[Any]) -> list[Any]:
    async with engine.connect() as connection:
        return [tuple(row) for row in await connection.execute(statement, {KEYS: keys})]


@pytest.mark.parametrize(("record", "column"), KEYED, ids=lambda value: getattr(value, "__name__", value))
async def test_a_direct_read_gives_what_sqlalchemy_gives(
    engine: AsyncEngine, seeded: StoreSession, record: type[Record], column: str
) -> None:
    statement = select_by_keys(record, column, engine.dialect.name)
    assert direct_read(statement, engine.dialect) is not None
    seen: list[str] = []
    stop = observe_direct_reads(engine, lambda sql, _seconds: seen.append(sql))
    try:
        keys = [1, 3, 4, 999]  # one missing
        records = await seeded.records(statement, record, {KEYS: keys})
    finally:
        stop()
    assert len(seen) == 1  # it did go directly, once
    expected = [record(*row) for row in await through_sqlalchemy(engine, statement, keys)]
    assert sorted(records, key=repr) == sorted(expected, key=repr)
    assert records, "the keys match rows"
    for value in records:
        created_at = getattr(value, "created_at", None)
        assert created_at is None or created_at.utcoffset() is not None  # the column type's result processing ran


async def test_no_keys_read_nothing(engine: AsyncEngine, seeded: StoreSession) -> None:
    statement = select_by_keys(CustomerRecord, "id", engine.dialect.name)
    assert await seeded.records(statement, CustomerRecord, {KEYS: []}) == []


async def test_the_sql_is_the_same_for_any_number_of_keys(engine: AsyncEngine, seeded: StoreSession) -> None:
    seen: list[str] = []
    statement = select_by_keys(CustomerRecord, "id", engine.dialect.name)
    stop = observe_direct_reads(engine, lambda sql, _seconds: seen.append(sql))
    try:
        for keys in ([1], [1, 2], list(range(1, 1001))):
            await seeded.records(statement, CustomerRecord, {KEYS: keys})
    finally:
        stop()
    assert len(seen) == 3
    assert len(set(seen)) == 1


async def test_only_marked_statements_are_read_directly(engine: AsyncEngine) -> None:
    marked = select(func.count()).select_from(text("customer")).execution_options(**{DIRECT: True})
    assert direct_read(marked, engine.dialect) is not None
    assert direct_read(marked.execution_options(**{DIRECT: False}), engine.dialect) is None
    assert direct_read(select(func.count()).select_from(text("customer")), engine.dialect) is None


async def test_a_statement_sqlalchemy_renders_at_execution_is_not_read_directly(engine: AsyncEngine) -> None:
    expanding = select_by_keys(CustomerRecord, "id", "another database")  # IN with a placeholder per key
    assert direct_read(expanding, engine.dialect) is None


async def test_every_statement_observer_sees_both_paths_once(engine: AsyncEngine, seeded: StoreSession) -> None:
    seen: list[str] = []
    stop = observe_statements(engine, lambda sql, seconds: seen.append(sql) if seconds >= 0 else None)
    try:
        await seeded.records(select_by_keys(CustomerRecord, "id", engine.dialect.name), CustomerRecord, {KEYS: [1]})
        await seeded.scalars(select(func.count()).select_from(text("product")))
    finally:
        stop()
    assert len(seen) == 2
    assert "customer" in seen[0]
    assert "product" in seen[1]
    await seeded.records(select_by_keys(CustomerRecord, "id", engine.dialect.name), CustomerRecord, {KEYS: [1]})
    await seeded.scalars(select(func.count()).select_from(text("product")))
    assert len(seen) == 2  # stopped on both paths


async def test_a_failed_direct_read_is_run_through_sqlalchemy_and_its_connection_dropped(store_url: str) -> None:
    """The pooled connection dies under the pool (closed by the driver): the direct read fails on it, gives it up
    rather than returning it, and the same read through SQLAlchemy succeeds on a new connection."""
    engine = create_engine(store_url, pool_size=1)
    store = StoreSession(create_sessionmaker(engine))
    try:
        await seed(store, SeedSize(customers=2, products=1, orders=1, lines_per_order=1))
        raw = await engine.raw_connection()
        driver: Any = raw.driver_connection
        await greenlet_spawn(raw.close)  # back in the pool
        await driver.close()  # and dead there, as after a server restart (and used too recently to be pinged)
        direct: list[str] = []
        stop = observe_direct_reads(engine, lambda sql, _seconds: direct.append(sql))
        errors: list[BaseException] = []
        event.listen(engine.sync_engine, "handle_error", lambda context: errors.append(context.original_exception))
        statement = select_by_keys(CustomerRecord, "id", engine.dialect.name)
        try:
            records = await store.records(statement, CustomerRecord, {KEYS: [1, 2]})
            assert [record.id for record in records] == [1, 2]
            assert direct == []
            assert errors == []  # on a new connection: the dead one did not go back to the pool
            records = await store.records(statement, CustomerRecord, {KEYS: [2]})
            assert [record.id for record in records] == [2]
            assert len(direct) == 1
        finally:
            stop()
        assert engine.sync_engine.pool.checkedout() == 0  # type: ignore[attr-defined]
    finally:
        await store.close()
        await engine.dispose()


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_a_direct_read_whose_server_connection_was_killed_falls_back(store_url: str) -> None:
    engine = create_engine(store_url, pool_size=1, ping_idle_after=3600.0)  # no ping: the read meets the dead one
    store = StoreSession(create_sessionmaker(engine))
    try:
        await seed(store, SeedSize(customers=2, products=1, orders=1, lines_per_order=1))
        async with engine.connect() as connection:
            pid = (await connection.execute(text("SELECT pg_backend_pid()"))).scalar_one()
        await postgres_admin_execute(f"SELECT pg_terminate_backend({pid}, 5000)")
        statement = select_by_keys(CustomerRecord, "id", "postgresql")
        records = await store.records(statement, CustomerRecord, {KEYS: [1, 2]})
        assert [record.id for record in records] == [1, 2]
    finally:
        await store.close()
        await engine.dispose()


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_a_cancelled_direct_read_does_not_return_its_busy_connection(store_url: str) -> None:
    """Cancelled mid-statement (a client went away), the connection is still busy with it on the server: it is
    invalidated, not given to the next read (asyncpg would refuse it: "another operation is in progress")."""
    engine = create_engine(store_url, pool_size=1)
    try:
        slow = select(func.pg_sleep(30)).execution_options(**{DIRECT: True})
        read = direct_read(slow, engine.dialect)
        assert read is not None
        task = asyncio.create_task(read.rows(engine, {}))
        await asyncio.sleep(0.3)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert engine.sync_engine.pool.checkedout() == 0  # type: ignore[attr-defined]
        quick = direct_read(select(func.now()).execution_options(**{DIRECT: True}), engine.dialect)
        assert quick is not None
        assert len(await asyncio.wait_for(quick.rows(engine, {}), 5)) == 1
    finally:
        await engine.dispose()


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_a_sqlite_connection_returned_inside_a_transaction_is_rolled_back(engine: AsyncEngine) -> None:
    """The pool rolls back only connections with a transaction open (`engine._rollback_if_open`), so one left
    open still never reaches the next user holding the database's write lock."""
    raw = await engine.raw_connection()
    driver: Any = raw.driver_connection
    await driver.execute(
        "INSERT INTO customer (email, name, created_at) VALUES ('left@example.com', 'Left Open', '2026-01-01')"
    )
    assert driver.in_transaction
    await greenlet_spawn(raw.close)
    assert not driver.in_transaction
    async with engine.connect() as connection:
        assert (await connection.execute(text("SELECT count(*) FROM customer"))).scalar_one() == 0
