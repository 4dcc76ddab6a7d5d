"""Direct reads (`integrations/store/direct.py`): the loaders' constant statements run on the driver give what
SQLAlchemy gives, are seen by every statement observer, and fall back to SQLAlchemy when the driver call fails,
never handing a broken connection back to the pool."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Select, bindparam, column, event, func, literal, select, table, text
from sqlalchemy.exc import DBAPIError, StatementError
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.util import greenlet_spawn
from sqlmodel import col

from integrations.errors import StoreUnavailableError
from integrations.store import models
from integrations.store.direct import DIRECT, DirectReadFailed, may_read_directly, observe_direct_reads, read_directly
from integrations.store.engine import create_engine, create_sessionmaker
from integrations.store.records import (
    KEYS,
    CustomerRecord,
    OrderLineRecord,
    OrderRecord,
    ProductRecord,
    Record,
    as_records,
    select_by_keys,
    select_with_parent_by_id,
    table_of,
    with_parent,
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
        return [tuple(row) for row in await connection.execute(statement, {KEYS: keys} if keys else {})]


@pytest.mark.parametrize(("record", "column"), KEYED, ids=lambda value: getattr(value, "__name__", value))
async def test_a_direct_read_gives_what_sqlalchemy_gives(
    engine: AsyncEngine, seeded: StoreSession, record: type[Record], column: str
) -> None:
    statement = select_by_keys(record, column, engine.dialect.name)
    assert may_read_directly(statement, engine)
    seen: list[str] = []
    stop = observe_direct_reads(engine, lambda sql, _seconds, _error: seen.append(sql))
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


async def test_a_direct_read_of_rows_with_their_parents_gives_what_sqlalchemy_and_two_lookups_give(
    engine: AsyncEngine, seeded: StoreSession
) -> None:
    statement = select_with_parent_by_id(OrderRecord, CustomerRecord, "customer_id", engine.dialect.name)
    assert may_read_directly(statement, engine)
    seen: list[str] = []
    stop = observe_direct_reads(engine, lambda sql, _seconds, _error: seen.append(sql))
    try:
        keys = [1, 3, 4, 999]  # one missing
        pairs = await seeded.records(statement, with_parent(OrderRecord, CustomerRecord), {KEYS: keys})
    finally:
        stop()
    assert len(seen) == 1
    build = with_parent(OrderRecord, CustomerRecord)
    assert sorted(pairs, key=repr) == sorted(
        (build(*row) for row in await through_sqlalchemy(engine, statement, keys)), key=repr
    )
    orders = await seeded.records(select_by_keys(OrderRecord, "id", engine.dialect.name), OrderRecord, {KEYS: keys})
    customers = await seeded.records(
        select_by_keys(CustomerRecord, "id", engine.dialect.name),
        CustomerRecord,
        {KEYS: [order.customer_id for order in orders]},
    )
    by_id = {customer.id: customer for customer in customers}
    assert sorted(pairs, key=repr) == sorted(((order, by_id[order.customer_id]) for order in orders), key=repr)
    assert len(pairs) == 3


async def test_no_keys_read_nothing(engine: AsyncEngine, seeded: StoreSession) -> None:
    statement = select_by_keys(CustomerRecord, "id", engine.dialect.name)
    assert await seeded.records(statement, CustomerRecord, {KEYS: []}) == []


async def test_the_sql_is_the_same_for_any_number_of_keys(engine: AsyncEngine, seeded: StoreSession) -> None:
    seen: list[str] = []
    statement = select_by_keys(CustomerRecord, "id", engine.dialect.name)
    stop = observe_direct_reads(engine, lambda sql, _seconds, _error: seen.append(sql))
    try:
        for keys in ([1], [1, 2], list(range(1, 1001))):
            await seeded.records(statement, CustomerRecord, {KEYS: keys})
    finally:
        stop()
    assert len(seen) == 3
    assert len(set(seen)) == 1


async def test_only_marked_statements_are_read_directly(engine: AsyncEngine) -> None:
    marked = select(func.count()).select_from(text("customer")).execution_options(**{DIRECT: True})
    assert may_read_directly(marked, engine)
    assert await read_directly(engine, marked, {}) == [[0]] or await read_directly(engine, marked, {}) == [(0,)]
    assert not may_read_directly(marked.execution_options(**{DIRECT: False}), engine)
    assert not may_read_directly(select(func.count()).select_from(text("customer")), engine)


async def test_a_statement_rendered_per_batch_is_not_marked(engine: AsyncEngine) -> None:
    expanding = select_by_keys(CustomerRecord, "id", "another database")  # IN with a placeholder per key
    assert not may_read_directly(expanding, engine)


async def test_a_marked_statement_found_unreadable_directly_takes_no_connection_again(
    engine: AsyncEngine, store: StoreSession
) -> None:
    """Known only once compiled for the engine's dialect: the first read takes a connection to learn it, the
    later ones go to SQLAlchemy at once (a batch never waits for the pool twice)."""
    customers = table_of(CustomerRecord)
    expanding = (
        select(customers.c.id)
        .where(customers.c.id.in_(bindparam(KEYS, expanding=True)))
        .execution_options(**{DIRECT: True})
    )
    checkouts: list[object] = []
    event.listen(engine.sync_engine, "checkout", lambda *_args: checkouts.append(None))
    assert may_read_directly(expanding, engine)
    assert await store.records(expanding, int, {KEYS: [1]}) == []
    assert len(checkouts) == 2  # the direct attempt, then SQLAlchemy
    assert await store.records(expanding, int, {KEYS: [1]}) == []
    assert len(checkouts) == 3


async def test_a_missing_parameter_is_left_to_sqlalchemy_to_report(engine: AsyncEngine, store: StoreSession) -> None:
    statement = select_by_keys(CustomerRecord, "id", engine.dialect.name)
    assert await read_directly(engine, statement, {}) is None
    with pytest.raises(StatementError, match="keys"):
        await store.records(statement, CustomerRecord)
    assert engine.sync_engine.pool.checkedout() == 0  # type: ignore[attr-defined]


def page_of_orders(*conditions: Any, after: int = 0, size: int = 3) -> Select[Any]:
    statement = select(models.Order).where(col(models.Order.id) > after, *conditions)
    converted = as_records(statement.order_by(col(models.Order.id)).limit(size))
    assert converted is not None
    return converted[0]


async def test_statements_of_one_shape_share_a_compiled_read_with_their_own_values(
    engine: AsyncEngine, seeded: StoreSession
) -> None:
    """Pages are rebuilt per request (`as_records`, marked `DIRECT_BY_SHAPE`): each runs with its own values
    (cursor, size, filters), compiled once for their shape."""
    placed = datetime(2020, 1, 1, tzinfo=UTC)
    pages = [
        page_of_orders(after=0, size=2),
        page_of_orders(after=2, size=3),
        page_of_orders(col(models.Order.created_at) > placed, after=1, size=5),  # a type with a bind processor
        page_of_orders(col(models.Order.created_at) > datetime(2999, 1, 1, tzinfo=UTC), after=0, size=5),
        page_of_orders(col(models.Order.customer_id) == 2, after=0, size=5),
    ]
    seen: list[str] = []
    stop = observe_direct_reads(engine, lambda sql, _seconds, _error: seen.append(sql))
    try:
        found = [await seeded.records(page, OrderRecord) for page in pages]
    finally:
        stop()
    assert len(seen) == len(pages)  # all directly
    assert seen[0] == seen[1]
    assert seen[2] == seen[3]
    for page, records in zip(pages, found, strict=True):
        assert records == [OrderRecord(*row) for row in await through_sqlalchemy(engine, page, [])]
    assert [[record.id for record in records] for records in found[:2]] == [[1, 2], [3, 4, 5]]
    assert found[3] == []
    assert found[2]
    assert all(record.created_at > placed for record in found[2])


async def test_values_set_with_params_are_left_to_sqlalchemy(engine: AsyncEngine, seeded: StoreSession) -> None:
    """`.params()` values are not part of the cache key's extracted values: such a page goes to SQLAlchemy,
    which binds them (the direct path would have sent the bind's default)."""
    statement = select(models.Order).where(col(models.Order.id) > bindparam("after", 0))
    converted = as_records(statement.order_by(col(models.Order.id)).limit(2).params(after=3))
    assert converted is not None
    assert await read_directly(engine, converted[0], {}) is None
    assert [record.id for record in await seeded.records(*converted)] == [4, 5]


async def test_a_shape_found_unreadable_directly_takes_no_connection_again(
    engine: AsyncEngine, seeded: StoreSession
) -> None:
    checkouts: list[object] = []
    event.listen(engine.sync_engine, "checkout", lambda *_args: checkouts.append(None))
    first = page_of_orders(col(models.Order.customer_id).in_([1, 2]))  # an IN SQLAlchemy renders per execution
    second = page_of_orders(col(models.Order.customer_id).in_([3]))
    assert [record.customer_id in (1, 2) for record in await seeded.records(first, OrderRecord)] == [True] * 3
    assert len(checkouts) == 2  # the direct attempt, then SQLAlchemy
    assert all(record.customer_id == 3 for record in await seeded.records(second, OrderRecord))
    assert len(checkouts) == 3


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_sqlite_binds_keys_as_json_only_for_integer_columns(engine: AsyncEngine, seeded: StoreSession) -> None:
    """json_each yields JSON's types: a text column compared with them would not match as a placeholder does."""
    assert "json_each" in str(select_by_keys(CustomerRecord, "id", "sqlite"))
    by_email = select_by_keys(CustomerRecord, "email", "sqlite")
    assert "json_each" not in str(by_email)
    (customer,) = await seeded.records(select_by_keys(CustomerRecord, "id", "sqlite"), CustomerRecord, {KEYS: [1]})
    assert await seeded.records(by_email, CustomerRecord, {KEYS: [customer.email]}) == [customer]


async def test_every_statement_observer_sees_both_paths_once(engine: AsyncEngine, seeded: StoreSession) -> None:
    seen: list[str] = []
    stop = observe_statements(engine, lambda sql, seconds, error: seen.append(sql) if seconds >= 0 else None)
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
        stop = observe_direct_reads(engine, lambda sql, _seconds, error: direct.append(sql) if error is None else None)
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


def slow(dialect: str) -> Select[Any]:
    """A statement that runs for a while (about half a second on SQLite here)."""
    if dialect == "postgresql":
        return select(func.pg_sleep(30))
    numbers = select(literal(1).label("x")).cte("numbers", recursive=True)
    numbers = numbers.union_all(select(numbers.c.x + 1).where(numbers.c.x < 3_000_000))
    return select(func.count()).select_from(numbers)


async def test_a_cancelled_direct_read_does_not_return_its_busy_connection(store_url: str) -> None:
    """Cancelled mid-statement (a client went away), the connection is still busy with it on the server: it is
    invalidated, not given to the next read (asyncpg would refuse it: "another operation is in progress")."""
    engine = create_engine(store_url, pool_size=1)
    try:
        invalidated: list[object] = []
        event.listen(engine.sync_engine, "invalidate", lambda *_args: invalidated.append(None))
        statement = slow(engine.dialect.name).execution_options(**{DIRECT: True})
        task = asyncio.create_task(read_directly(engine, statement, {}))
        await asyncio.sleep(0.1)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert len(invalidated) == 1
        assert engine.sync_engine.pool.checkedout() == 0  # type: ignore[attr-defined]
        quick = select(func.count()).select_from(text("customer")).execution_options(**{DIRECT: True})
        assert await asyncio.wait_for(read_directly(engine, quick, {}), 5) is not None
    finally:
        await engine.dispose()


async def test_a_statement_error_keeps_the_connection_and_is_reported(engine: AsyncEngine, store: StoreSession) -> None:
    """A statement the database refuses fails the direct read (observers see the error) and then fails through
    SQLAlchemy with its usual error; the connection, healthy, goes back to the pool instead of being replaced."""
    broken: Select[Any] = select(column("id")).select_from(table("no_such_table")).execution_options(**{DIRECT: True})
    errors: list[BaseException | None] = []
    stop = observe_statements(engine, lambda _sql, _seconds, error: errors.append(error))
    connects: list[object] = []
    event.listen(engine.sync_engine, "connect", lambda *_args: connects.append(None))
    await store.records(select(func.count()).select_from(text("customer")).execution_options(**{DIRECT: True}), int)
    connected = len(connects)
    try:
        with pytest.raises(DirectReadFailed):
            await read_directly(engine, broken, {})
        with pytest.raises(DBAPIError):
            await store.records(broken, int)
    finally:
        stop()
    assert len(connects) == connected  # no connection given up
    assert [error is not None for error in errors] == [False, True, True, True]  # direct, then SQLAlchemy's


@pytest.mark.parametrize("where", ["sqlite", "postgresql"])
async def test_no_connection_to_be_had_fails_once_without_a_second_try(where: str, tmp_path: Path) -> None:
    """When the pool cannot connect, the read fails as any other (StoreUnavailableError), without trying again
    through SQLAlchemy (a second connect timeout)."""
    if where == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path}/missing/store.db"  # its directory does not exist
    else:
        url = "postgresql+asyncpg://postgres@127.0.0.1:1/test"  # nothing listens there
    engine = create_engine(url)
    attempts: list[object] = []
    event.listen(engine.sync_engine, "do_connect", lambda *_args: attempts.append(None))
    store = StoreSession(create_sessionmaker(engine))
    try:
        with pytest.raises(StoreUnavailableError):
            await store.records(select_by_keys(CustomerRecord, "id", where), CustomerRecord, {KEYS: [1]})
    finally:
        await store.close()
        await engine.dispose()
    assert len(attempts) == 1


async def test_an_observer_that_raises_neither_fails_nor_repeats_nor_hides_a_statement(
    engine: AsyncEngine, seeded: StoreSession, caplog: pytest.LogCaptureFixture
) -> None:
    seen: list[tuple[str, str | None]] = []

    def broken(_sql: str, _seconds: float, _error: BaseException | None) -> None:
        raise RuntimeError("observer bug")

    def record(sql: str, seconds: float, error: BaseException | None) -> None:
        assert 0 <= seconds < 5
        seen.append((sql, type(error).__name__ if error else None))

    stops = [observe_statements(engine, broken), observe_statements(engine, record)]
    try:
        statement = select_by_keys(CustomerRecord, "id", engine.dialect.name)
        assert [record.id for record in await seeded.records(statement, CustomerRecord, {KEYS: [1]})] == [1]
        assert len(await seeded.scalars(select(func.count()).select_from(text("customer")))) == 1  # SQLAlchemy's
        with pytest.raises(DBAPIError):  # the database's error, not the observer's
            await seeded.scalars(select(column("id")).select_from(table("no_such_table")))
    finally:
        for stop in stops:
            stop()
    assert [error for _sql, error in seen] == [None, None, DBAPI_ERRORS[engine.dialect.name]]
    assert "a statement observer failed" in caplog.text


DBAPI_ERRORS = {"sqlite": "OperationalError", "postgresql": "ProgrammingError"}


async def test_a_cancelled_statement_is_not_reported_as_failed(engine: AsyncEngine, store: StoreSession) -> None:
    errors: list[BaseException | None] = []
    stop = observe_statements(engine, lambda _sql, _seconds, error: errors.append(error))
    try:
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(store.scalars(slow(engine.dialect.name)), 0.1)
    finally:
        stop()
    assert errors == []


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
