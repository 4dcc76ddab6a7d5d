"""Record reads run on the driver itself, past SQLAlchemy's execution.

A loader's batch is one SELECT that never changes (`records.select_by_keys`): only its keys do. Through
SQLAlchemy it still costs 400-600 µs of CPU (50 keys): an execution context, the result machinery, and on SQLite
five trips to aiosqlite's thread (cursor, execute, fetch, close, rollback). Compiled once here, the same SQL runs
with one driver call on a connection of the engine's own pool (asyncpg's ``fetch``, aiosqlite's
``execute_fetchall``, one trip) in about 180-250 µs, its parameters and results converted by the column types' own
processors, so the values are those SQLAlchemy would return. A page of records (`records.as_records`) is built
anew for each request; its compiled form is kept by SQLAlchemy's cache key instead, and each page's own values
(cursor, size, filters) come with that key, as in SQLAlchemy's own compiled cache.

Only statements marked `DIRECT` or `DIRECT_BY_SHAPE` go this way, and only on asyncpg and aiosqlite. One that
cannot be run so after all (a parameter rendered at execution, such as an expanding ``IN``; a type whose processor
needs the cursor's type code) is left to SQLAlchemy, and so are later ones of its shape, without taking a
connection first; a read missing a parameter is left to SQLAlchemy to report. Failures:

- taking a connection from the pool fails as it would through SQLAlchemy (the caller translates the error);
- the driver call fails (`DirectReadFailed`): the caller runs the statement through SQLAlchemy instead
  (`StoreSession.records`), whose recovery and errors then apply. The connection goes back to the pool unless the
  driver lost it, which invalidates it;
- cancelled mid-call, the connection is invalidated: the server may still be answering on it.

On SQLite, lookups by primary key of at most `LOOP_MAX_KEYS` keys (constant statements) run in the event loop's own
thread once compiled, without a trip to aiosqlite's thread (`loop_reads`).

SQLAlchemy's events do not see these statements; `observe_direct_reads` does, and `statements.observe_statements`
registers an observer for both paths at once (SQL counters, metrics).
"""

from __future__ import annotations

import logging
import time
import weakref
from collections import OrderedDict
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select
from sqlalchemy.engine import Compiled, Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import PoolProxiedConnection
from sqlalchemy.sql.cache_key import CacheKey
from sqlalchemy.util import await_, greenlet_spawn

from integrations.store.loop_reads import read_in_loop
from integrations.store.tags import BY_PRIMARY_KEY

DIRECT = "gateway_direct"
"""Execution option of a statement built once and reused (its parameters given at execution), which the store may
run on the driver directly."""

DIRECT_BY_SHAPE = "gateway_direct_by_shape"
"""Execution option of a statement built anew for each use, which the store may run on the driver directly: its
compiled form is kept by SQLAlchemy's cache key (about 14 µs to make for a page of orders), as SQLAlchemy's own
compiled cache does."""

StatementObserver = Callable[[str, float, BaseException | None], None]
"""Called after each statement with its SQL, its duration in seconds and the error it failed with (or None)."""

logger = logging.getLogger("integrations.store")
_observers: weakref.WeakKeyDictionary[Any, list[StatementObserver]] = weakref.WeakKeyDictionary()

Processor = Callable[[Any], Any]


class DirectReadFailed(Exception):
    """The driver call of a direct read failed (the cause says how); its connection has been dealt with."""


def observe_direct_reads(engine: AsyncEngine, observer: StatementObserver) -> Callable[[], None]:
    """Tell `observer` about every direct read on `engine`; returns the function that stops it."""
    observers = _observers.setdefault(engine.sync_engine, [])
    observers.append(observer)
    return lambda: observers.remove(observer)


def may_read_directly(statement: Select[Any], engine: AsyncEngine) -> bool:
    """`statement` is marked `DIRECT` or `DIRECT_BY_SHAPE` and `engine`'s driver is one this module can call."""
    options = statement.get_execution_options()
    return bool(options.get(DIRECT) or options.get(DIRECT_BY_SHAPE)) and engine.dialect.driver in _DRIVERS


async def read_directly(engine: AsyncEngine, statement: Select[Any], parameters: Mapping[str, Any]) -> list[Any] | None:
    """The rows of `statement` (see `may_read_directly`) read on the driver of a pooled connection; None when it
    cannot be run that way (see the module's docstring; known after the first try, without taking a connection).
    Raises `DirectReadFailed` when the driver call fails, and whatever SQLAlchemy raises when no connection can be
    had."""
    dialect = engine.dialect
    keyed = _key(statement, dialect)
    if keyed is None:
        return None
    key, cache_key = keyed
    read = _reads.get(key)
    if read is not None or key in _reads:
        _reads.move_to_end(key)  # least recently used first out
        if read is None:
            return None
        if dialect.driver == "aiosqlite" and _bounded_lookup(statement, cache_key, parameters):  # `loop_reads`
            rows = _read_in_loop(engine, read, parameters)
            if rows is not None:
                return rows
    # One greenlet for the checkout, the driver's call and the return: the pool's code may do I/O (connect, ping,
    # reset) and so runs in one; a greenlet each for the checkout and the return cost 10 µs more per read.
    return await greenlet_spawn(_read_on_a_connection, engine, statement, parameters, key, cache_key, read)


LOOP_MAX_KEYS = 100
"""The most keys a lookup read in the event loop's thread may have (`loop_reads`): at most as many rows, a few
hundred µs at most. A larger batch goes to aiosqlite."""


def _bounded_lookup(statement: Select[Any], cache_key: CacheKey | None, parameters: Mapping[str, Any]) -> bool:
    """A constant statement (`DIRECT`) looking rows up by primary key (`tags.BY_PRIMARY_KEY`: one row per key at
    most), with no list of more than `LOOP_MAX_KEYS` values: what SQLite answers in a time bounded by the keys."""
    if cache_key is not None or not statement.get_execution_options().get(BY_PRIMARY_KEY):
        return False
    return all(not isinstance(value, list | tuple) or len(value) <= LOOP_MAX_KEYS for value in parameters.values())


def _read_in_loop(engine: AsyncEngine, read: _Read, parameters: Mapping[str, Any]) -> list[Any] | None:
    """`read` on SQLite in the event loop's thread (`loop_reads`); None when it must go to aiosqlite after all."""
    try:
        values = read.values(parameters, None)
    except Exception:  # left to the connection path, which leaves it to SQLAlchemy to report
        return None
    started = time.perf_counter()
    rows = read_in_loop(engine, read.sql, values)
    if rows is None:
        return None
    _notify(engine, read.sql, time.perf_counter() - started, None)
    return read.processed(rows)


def _read_on_a_connection(
    engine: AsyncEngine,
    statement: Select[Any],
    parameters: Mapping[str, Any],
    key: Hashable,
    cache_key: CacheKey | None,
    read: _Read | None,
) -> list[Any] | None:
    """`read_directly` from the checkout on, in a greenlet (`greenlet_spawn`): the driver's call is awaited with
    `await_`."""
    dialect = engine.dialect
    connection = _checkout(engine)  # connected once, the dialect knows its server: compile after this
    try:
        if read is None:
            read = _remember(key, _compiled(statement, dialect, cache_key))
        values = None if read is None else read.values(parameters, cache_key)
    except Exception:  # a parameter missing, or refused by its type's processor: SQLAlchemy reports it as its own
        values = None
    except BaseException:
        connection.close()
        raise
    if read is None or values is None:
        connection.close()
        return None
    driver: Any = connection.driver_connection
    usable, fetch = _DRIVERS[dialect.driver]
    started = time.perf_counter()
    try:
        rows = await_(fetch(driver, read.sql, values))
    except Exception as error:
        _notify(engine, read.sql, time.perf_counter() - started, error)
        (connection.close if usable(driver) else connection.invalidate)()
        raise DirectReadFailed(f"direct read failed: {type(error).__name__}") from error
    except BaseException:  # cancelled: the server may still be sending the answer on this connection
        connection.invalidate()
        raise
    connection.close()
    _notify(engine, read.sql, time.perf_counter() - started, None)
    return read.processed(rows)


def _checkout(engine: AsyncEngine) -> PoolProxiedConnection:
    """A connection of the pool; a driver's error connecting is raised as SQLAlchemy's `Connection` would raise it
    (the pool itself passes it on as it is)."""
    dbapi_error = engine.dialect.loaded_dbapi.Error
    try:
        return engine.sync_engine.raw_connection()
    except dbapi_error as error:
        raise DBAPIError.instance(None, None, error, dbapi_error, dialect=engine.dialect) from error


@dataclass(frozen=True, slots=True)
class _Read:
    """A statement compiled for one dialect: its SQL text, its parameters in the driver's order with their bind
    processors, and the result processors of the columns that have one."""

    compiled: Compiled
    sql: str
    parameters: tuple[tuple[str, Processor | None], ...]
    results: tuple[tuple[int, Processor], ...]

    def values(self, given: Mapping[str, Any], cache_key: CacheKey | None) -> list[Any]:
        """The driver's parameters: those `given`, the rest as bound in the statement (for one keyed by its shape,
        the values extracted with its cache key), each through its type's bind processor."""
        extracted = None if cache_key is None else cache_key.bindparams
        bound = self.compiled.construct_params(given, extracted_parameters=extracted, escape_names=False) or {}
        return [bound[name] if process is None else process(bound[name]) for name, process in self.parameters]

    def processed(self, rows: list[Any]) -> list[Any]:
        if not self.results:
            return rows
        processed = []
        for row in rows:
            values = list(row)
            for index, process in self.results:
                values[index] = process(values[index])
            processed.append(values)
        return processed


def _key(statement: Select[Any], dialect: Dialect) -> tuple[Hashable, CacheKey | None] | None:
    """What the statement's compiled form is kept under: the statement itself when built once (`DIRECT`), else
    SQLAlchemy's cache key, which is the same for every statement of the same shape (None: it has none)."""
    if statement.get_execution_options().get(DIRECT):
        return (statement, dialect), None
    cache_key = statement._generate_cache_key()
    if cache_key is None or cache_key.params:  # values set with `.params()` travel apart from the cache key
        return None
    return (cache_key.key, dialect), cache_key


def _compiled(statement: Select[Any], dialect: Dialect, cache_key: CacheKey | None) -> _Read | None:
    try:
        return _compile(statement, dialect, cache_key)
    except Exception as error:  # SQLAlchemy's own execution will raise it where it belongs, with its context
        logger.warning("statement not read directly: %s: %s", type(error).__name__, error)
        return None


def _compile(statement: Select[Any], dialect: Dialect, cache_key: CacheKey | None) -> _Read | None:
    if cache_key is None:
        compiled = statement.compile(dialect=dialect)
    else:  # then the values of other statements of its shape can be given with their own cache keys
        compiled = statement.compile(dialect=dialect, cache_key=cache_key)
    if compiled.literal_execute_params or compiled.post_compile_params:
        return None  # rendered anew for each execution (an expanding IN)
    binds = [(name, compiled.binds[name]) for name in compiled.positiontup or []]  # a name may come twice (qmark)
    if any(bind.callable is not None for _name, bind in binds):
        return None
    parameters = tuple((name, bind.type.dialect_impl(dialect).bind_processor(dialect)) for name, bind in binds)
    # SQLAlchemy gives a result processor the cursor's type code; a type that needs it (asyncpg's NUMERIC, FLOAT)
    # raises without one, and its statements are left to SQLAlchemy.
    results = tuple(
        (index, process)
        for index, column in enumerate(statement.selected_columns)
        if (process := column.type.dialect_impl(dialect).result_processor(dialect, None)) is not None
    )
    return _Read(compiled, compiled.string, parameters, results)


def _remember(key: Hashable, read: _Read | None) -> _Read | None:
    _reads[key] = read
    if len(_reads) > _KEPT:
        _reads.popitem(last=False)
    return read


_KEPT = 512
_reads: OrderedDict[Hashable, _Read | None] = OrderedDict()
"""Compiled reads by statement (`DIRECT`) or shape (`DIRECT_BY_SHAPE`) and dialect, None for one that cannot be run
directly; the least recently used are dropped past `_KEPT` (the gateway's list queries make a few hundred shapes;
a statement kept by identity stays alive while it is here)."""


def _notify(engine: AsyncEngine, sql: str, seconds: float, error: BaseException | None) -> None:
    for observer in _observers.get(engine.sync_engine, ()):
        tell(observer, sql, seconds, error)


def tell(observer: StatementObserver, sql: str, seconds: float, error: BaseException | None) -> None:
    """Call `observer`; one that raises is logged, and never fails, repeats or hides a statement or its error."""
    try:
        observer(sql, seconds, error)
    except Exception:
        logger.exception("a statement observer failed")


async def _fetch_asyncpg(connection: Any, sql: str, values: list[Any]) -> Any:
    return await connection.fetch(sql, *values)


async def _fetch_aiosqlite(connection: Any, sql: str, values: list[Any]) -> Any:
    return await connection.execute_fetchall(sql, values)


def _asyncpg_usable(connection: Any) -> bool:
    return not connection.is_closed()


def _aiosqlite_usable(connection: Any) -> bool:
    try:
        connection.in_transaction  # noqa: B018 -- raises once the connection is closed
    except ValueError:
        return False
    return True


_DRIVERS: dict[str, tuple[Callable[[Any], bool], Callable[[Any, str, list[Any]], Any]]] = {
    "asyncpg": (_asyncpg_usable, _fetch_asyncpg),
    "aiosqlite": (_aiosqlite_usable, _fetch_aiosqlite),
}
"""Per driver: whether a connection survived a failed call, and the call itself."""
