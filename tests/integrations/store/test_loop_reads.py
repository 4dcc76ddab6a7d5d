"""SQLite's lookups by primary key run in the event loop's thread (`integrations/store/loop_reads.py`): they give
what SQLAlchemy gives, take no pool connection, see committed writes at once, never wait for a lock, fall back to
aiosqlite when the loop's connection fails, and close with the engine; lookups by foreign key and large batches
stay on aiosqlite."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncEngine

from integrations.store import loop_reads
from integrations.store.direct import LOOP_MAX_KEYS, observe_direct_reads
from integrations.store.engine import create_engine
from integrations.store.records import (
    KEYS,
    CustomerRecord,
    OrderLineRecord,
    OrderRecord,
    ProductRecord,
    Record,
    select_by_keys,
    select_with_parent_by_id,
    with_parent,
)
from integrations.store.session import StoreSession
from resolvers.seed import SeedSize, seed

SQLITE = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)

KEYED: list[tuple[type[Record], str, bool]] = [
    # record, key column, whether it is read in the loop (by primary key: at most a row per key)
    (CustomerRecord, "id", True),
    (ProductRecord, "id", True),
    (OrderRecord, "id", True),
    (OrderLineRecord, "order_id", False),  # by foreign key: as many rows as the data holds, on aiosqlite
    (OrderRecord, "customer_id", False),
]


@pytest.fixture
async def seeded(store: StoreSession) -> StoreSession:
    await seed(store, SeedSize(customers=4, products=3, orders=6, lines_per_order=2))
    return store


@contextmanager
def checkouts(engine: AsyncEngine) -> Iterator[list[int]]:
    """The number of pool checkouts while inside (in a list, read after the block)."""
    counted = [0]

    def checkout(*_args: Any) -> None:
        counted[0] += 1

    event.listen(engine.sync_engine.pool, "checkout", checkout)
    try:
        yield counted
    finally:
        event.remove(engine.sync_engine.pool, "checkout", checkout)


async def through_sqlalchemy(engine: AsyncEngine, statement: Any, keys: list[Any]) -> list[tuple[Any, ...]]:
    async with engine.connect() as connection:
        return [tuple(row) for row in await connection.execute(statement, {KEYS: keys})]


@SQLITE
@pytest.mark.parametrize(("record", "column", "in_loop"), KEYED, ids=lambda value: getattr(value, "__name__", value))
async def test_a_loop_read_gives_what_sqlalchemy_gives_without_a_pool_connection(
    engine: AsyncEngine, seeded: StoreSession, record: type[Record], column: str, in_loop: bool
) -> None:
    statement = select_by_keys(record, column, "sqlite")
    keys = [1, 3, 4, 999]
    first = await seeded.records(statement, record, {KEYS: keys})  # compiled on a connection of the pool
    seen: list[str] = []
    stop = observe_direct_reads(engine, lambda sql, _seconds, _error: seen.append(sql))
    try:
        with checkouts(engine) as taken:
            again = await seeded.records(statement, record, {KEYS: keys})
    finally:
        stop()
    assert taken == [0 if in_loop else 1]
    assert len(seen) == 1  # observed like any direct read (SQL counters, spans)
    expected = [record(*row) for row in await through_sqlalchemy(engine, statement, keys)]
    assert sorted(again, key=repr) == sorted(expected, key=repr) == sorted(first, key=repr)
    assert again


@SQLITE
async def test_a_joined_loop_read_gives_what_sqlalchemy_gives(engine: AsyncEngine, seeded: StoreSession) -> None:
    statement = select_with_parent_by_id(OrderRecord, CustomerRecord, "customer_id", "sqlite")
    build = with_parent(OrderRecord, CustomerRecord)
    await seeded.records(statement, build, {KEYS: [1]})
    with checkouts(engine) as taken:
        pairs = await seeded.records(statement, build, {KEYS: [1, 3, 999]})
    assert taken == [0]
    expected = [build(*row) for row in await through_sqlalchemy(engine, statement, [1, 3, 999])]
    assert sorted(pairs, key=repr) == sorted(expected, key=repr)
    assert len(pairs) == 2


async def name_of(store: StoreSession, pk: int) -> str:
    [customer] = await store.records(select_by_keys(CustomerRecord, "id", "sqlite"), CustomerRecord, {KEYS: [pk]})
    return customer.name


@SQLITE
async def test_a_loop_read_sees_a_write_committed_just_before(engine: AsyncEngine, seeded: StoreSession) -> None:
    before = await name_of(seeded, 2)
    await name_of(seeded, 2)  # on the loop's connection from now on
    async with seeded.transaction() as session:
        await session.execute(text("UPDATE customer SET name = 'Renamed' WHERE id = 2"))
    with checkouts(engine) as taken:
        assert await name_of(seeded, 2) == "Renamed" != before
    assert taken == [0]


@SQLITE
async def test_a_large_batch_is_read_on_aiosqlite(engine: AsyncEngine, seeded: StoreSession) -> None:
    """More keys than `LOOP_MAX_KEYS`: the loop would wait for SQLite as long as they take."""
    statement = select_by_keys(CustomerRecord, "id", "sqlite")
    await seeded.records(statement, CustomerRecord, {KEYS: [1]})
    many = list(range(1, LOOP_MAX_KEYS + 2))
    with checkouts(engine) as taken:
        customers = await seeded.records(statement, CustomerRecord, {KEYS: many})
    assert taken == [1]
    assert sorted(customer.id for customer in customers) == [1, 2, 3, 4]
    with checkouts(engine) as taken:
        await seeded.records(statement, CustomerRecord, {KEYS: many[:LOOP_MAX_KEYS]})
    assert taken == [0]


@SQLITE
async def test_the_loop_connection_never_waits_for_a_lock_and_cannot_write(
    engine: AsyncEngine, seeded: StoreSession
) -> None:
    await name_of(seeded, 1)
    await name_of(seeded, 1)
    connections = loop_reads._engines[engine.sync_engine]
    assert connections is not None
    connection = connections.by_thread[threading.get_ident()]
    assert connection.execute("PRAGMA busy_timeout").fetchall() == [(0,)]  # busy: fails at once, read elsewhere
    with pytest.raises(sqlite3.OperationalError, match="readonly"):
        connection.execute("UPDATE customer SET name = 'x' WHERE id = 1")


@SQLITE
async def test_a_failed_loop_read_is_read_on_aiosqlite_and_its_connection_replaced(
    engine: AsyncEngine, seeded: StoreSession
) -> None:
    expected = await name_of(seeded, 1)
    await name_of(seeded, 1)
    connections = loop_reads._engines[engine.sync_engine]
    assert connections is not None
    broken = connections.by_thread[threading.get_ident()]
    broken.close()  # a real sqlite3 error on the next use: "Cannot operate on a closed database"
    with checkouts(engine) as taken:
        assert await name_of(seeded, 1) == expected
    assert taken == [1]  # read on a pool connection instead
    with checkouts(engine) as taken:
        assert await name_of(seeded, 1) == expected
    assert taken == [0]  # and on a new connection of the loop's after that
    assert connections.by_thread[threading.get_ident()] is not broken


@SQLITE
async def test_the_loop_connections_close_with_the_engine(engine: AsyncEngine, seeded: StoreSession) -> None:
    await name_of(seeded, 1)
    await name_of(seeded, 1)
    connections = loop_reads._engines[engine.sync_engine]
    assert connections is not None
    [connection] = connections.by_thread.values()
    await engine.dispose()
    assert connections.by_thread == {}
    with pytest.raises(Exception, match="closed database"):
        connection.execute("SELECT 1")


async def test_no_loop_connection_for_a_database_in_memory() -> None:
    engine = create_engine("sqlite+aiosqlite://")
    try:
        assert loop_reads.read_in_loop(engine, "SELECT 1", []) is None
        assert loop_reads._engines[engine.sync_engine] is None
    finally:
        await engine.dispose()
