"""Constant reads run on the driver itself, past SQLAlchemy's execution.

A loader's batch is one SELECT that never changes (`records.select_by_keys`): only its keys do. Through
SQLAlchemy it still costs 400-600 µs of CPU (50 keys): an execution context, the result machinery, and on SQLite
five trips to aiosqlite's thread (cursor, execute, fetch, close, rollback). Compiled once here, the same SQL runs
with one driver call on a connection of the engine's own pool (asyncpg's ``fetch``, aiosqlite's
``execute_fetchall``, one trip) in about 180-250 µs, its parameters and results converted by the column types' own
processors, so the values are those SQLAlchemy would return.

Only statements marked `DIRECT` go this way, and only on asyncpg and aiosqlite. One that cannot be run so after
all (a parameter rendered at execution, a type whose processor needs the cursor's type code) is left to
SQLAlchemy, and remembered; a read missing a parameter is left to SQLAlchemy to report. Failures:

- taking a connection from the pool fails as it would through SQLAlchemy (the caller translates the error);
- the driver call fails (`DirectReadFailed`): the caller runs the statement through SQLAlchemy instead
  (`StoreSession.records`), whose recovery and errors then apply. The connection goes back to the pool unless the
  driver lost it, which invalidates it;
- cancelled mid-call, the connection is invalidated: the server may still be answering on it.

SQLAlchemy's events do not see these statements; `observe_direct_reads` does, and `statements.observe_statements`
registers an observer for both paths at once (SQL counters, metrics).
"""

from __future__ import annotations

import logging
import time
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from sqlalchemy import Select
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import PoolProxiedConnection
from sqlalchemy.util import greenlet_spawn

DIRECT = "gateway_direct"
"""Execution option of a statement built once and reused (its parameters given at execution), which the store may
run on the driver directly."""

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
    """`statement` is marked `DIRECT`, `engine`'s driver is one this module can call, and `read_directly` has not
    found that it cannot run it."""
    return (
        bool(statement.get_execution_options().get(DIRECT))
        and engine.dialect.driver in _DRIVERS
        and (statement, engine.dialect) not in _refused
    )


async def read_directly(engine: AsyncEngine, statement: Select[Any], parameters: Mapping[str, Any]) -> list[Any] | None:
    """The rows of `statement` (see `may_read_directly`) read on the driver of a pooled connection; None when it
    cannot be run that way after all (its parameters are rendered at execution or missing, or its types need the
    driver's type codes). Raises `DirectReadFailed` when the driver call fails, and whatever SQLAlchemy raises when no
    connection can be had."""
    connection = await _checkout(engine)  # connected once, the dialect knows its server: compile after this
    try:
        read = _compiled(statement, engine.dialect)
        values = None if read is None else [_bound(parameters, *parameter) for parameter in read.parameters]
    except Exception:  # a parameter missing, or refused by its type's processor: SQLAlchemy reports it as its own
        read = values = None
    except BaseException:
        await greenlet_spawn(connection.close)
        raise
    if read is None or values is None:
        if read is None:  # for good: the next reads of it go to SQLAlchemy without taking a connection first
            _refused.add((statement, engine.dialect))
        await greenlet_spawn(connection.close)
        return None
    driver: Any = connection.driver_connection
    usable, fetch = _DRIVERS[engine.dialect.driver]
    started = time.perf_counter()
    try:
        rows = await fetch(driver, read.sql, values)
    except Exception as error:
        _notify(engine, read.sql, time.perf_counter() - started, error)
        await greenlet_spawn(connection.close if usable(driver) else connection.invalidate)
        raise DirectReadFailed(f"direct read failed: {type(error).__name__}") from error
    except BaseException:  # cancelled: the server may still be sending the answer on this connection
        await greenlet_spawn(connection.invalidate)
        raise
    await greenlet_spawn(connection.close)
    _notify(engine, read.sql, time.perf_counter() - started, None)
    return read.processed(rows)


async def _checkout(engine: AsyncEngine) -> PoolProxiedConnection:
    """A connection of the pool; a driver's error connecting is raised as SQLAlchemy's `Connection` would raise it
    (the pool itself passes it on as it is)."""
    dbapi_error = engine.dialect.loaded_dbapi.Error
    try:
        return await engine.raw_connection()
    except dbapi_error as error:
        raise DBAPIError.instance(None, None, error, dbapi_error, dialect=engine.dialect) from error


@dataclass(frozen=True, slots=True)
class _Read:
    """A statement compiled for one dialect: its SQL text, its parameters in the driver's order with their bind
    processors, and the result processors of the columns that have one."""

    sql: str
    parameters: tuple[tuple[str, Processor | None, Any], ...]
    """Name, bind processor and the value bound in the statement (`_REQUIRED` if it must be given)."""
    results: tuple[tuple[int, Processor], ...]

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


@lru_cache(maxsize=256)  # marked statements are built once each; the cache holds them, so identities stay unique
def _compiled(statement: Select[Any], dialect: Dialect) -> _Read | None:
    try:
        return _compile(statement, dialect)
    except Exception as error:  # SQLAlchemy's own execution will raise it where it belongs, with its context
        logger.warning("statement not read directly: %s: %s", type(error).__name__, error)
        return None


def _compile(statement: Select[Any], dialect: Dialect) -> _Read | None:
    compiled = statement.compile(dialect=dialect)
    if compiled.literal_execute_params or compiled.post_compile_params:
        return None
    binds = [compiled.binds[name] for name in compiled.positiontup or []]
    if any(bind.callable is not None for bind in binds):
        return None
    parameters = tuple(
        (bind.key, bind.type.dialect_impl(dialect).bind_processor(dialect), _REQUIRED if bind.required else bind.value)
        for bind in binds
    )
    # SQLAlchemy gives a result processor the cursor's type code; a type that needs it (asyncpg's NUMERIC, FLOAT)
    # raises without one, and its statements are left to SQLAlchemy.
    results = tuple(
        (index, process)
        for index, column in enumerate(statement.selected_columns)
        if (process := column.type.dialect_impl(dialect).result_processor(dialect, None)) is not None
    )
    return _Read(compiled.string, parameters, results)


_REQUIRED = object()
_refused: set[tuple[Select[Any], Dialect]] = set()
"""Marked statements `_compiled` cannot run (few: each is built once), by dialect."""


class _Missing(Exception):
    """A required parameter was not given."""


def _bound(given: Mapping[str, Any], name: str, process: Processor | None, bound: Any) -> Any:
    value = given.get(name, bound)
    if value is _REQUIRED:
        raise _Missing(name)
    return value if process is None else process(value)


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
