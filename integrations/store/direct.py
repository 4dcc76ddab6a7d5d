"""Constant reads run on the driver itself, past SQLAlchemy's execution.

A loader's batch is one SELECT that never changes (`records.select_by_keys`): only its keys do. Through
SQLAlchemy it still costs 300-550 µs of CPU: an execution context, the result machinery, and on SQLite five trips
to aiosqlite's thread (cursor, execute, fetch, close, rollback). Compiled once here, the same SQL runs with one
driver call on a connection of the engine's own pool (asyncpg's ``fetch``, aiosqlite's ``execute_fetchall``, one
trip) in about 180-250 µs, its parameters and results converted by the column types' own processors, so the values
are those SQLAlchemy would return.

Only statements marked `DIRECT` go this way, and only on asyncpg and aiosqlite. A direct read that fails for any
reason gives its connection up (invalidated, never returned to the pool) and the caller runs the statement through
SQLAlchemy instead (`StoreSession.records`), whose error handling then applies: a lost connection invalidates the
pool, a real error is translated as for any other statement.

SQLAlchemy's events do not see these statements; `observe_direct_reads` does, and `statements.observe_statements`
registers an observer for both paths at once (SQL counters, metrics).
"""

from __future__ import annotations

import time
import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from sqlalchemy import Select
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.util import greenlet_spawn

DIRECT = "gateway_direct"
"""Execution option of a statement built once and reused (its parameters given at execution), which the store may
run on the driver directly."""

DirectReadObserver = Callable[[str, float], None]
"""Called after each direct read that succeeded, with its SQL and its duration in seconds."""

_observers: weakref.WeakKeyDictionary[Any, list[DirectReadObserver]] = weakref.WeakKeyDictionary()

Processor = Callable[[Any], Any]


def observe_direct_reads(engine: AsyncEngine, observer: DirectReadObserver) -> Callable[[], None]:
    """Tell `observer` about every direct read on `engine`; returns the function that stops it."""
    observers = _observers.setdefault(engine.sync_engine, [])
    observers.append(observer)
    return lambda: observers.remove(observer)


@dataclass(frozen=True, slots=True)
class DirectRead:
    """A statement compiled for one dialect: its SQL text, its parameters in the driver's order with their bind
    processors, and a result processor per column (None where the driver's value is already the right one)."""

    sql: str
    parameters: tuple[tuple[str, Processor | None, Any], ...]
    """Name, bind processor and the value bound in the statement (`_REQUIRED` if it must be given)."""
    results: tuple[tuple[int, Processor], ...]
    fetch: Callable[[Any, str, list[Any]], Any]

    async def rows(self, engine: AsyncEngine, parameters: Mapping[str, Any]) -> list[Sequence[Any]]:
        """The statement's rows, read on a connection of `engine`'s pool. Any failure invalidates that connection
        (it may be mid-protocol or dead) and propagates."""
        values = [_bound(parameters, name, bind, bound) for name, bind, bound in self.parameters]
        connection = await engine.raw_connection()
        started = time.perf_counter()
        try:
            rows = await self.fetch(connection.driver_connection, self.sql, values)
        except BaseException as error:
            await greenlet_spawn(connection.invalidate, error if isinstance(error, Exception) else None)
            raise
        await greenlet_spawn(connection.close)
        elapsed = time.perf_counter() - started
        for observer in _observers.get(engine.sync_engine, ()):
            observer(self.sql, elapsed)
        if not self.results:
            return rows  # type: ignore[no-any-return]
        return [self._processed(row) for row in rows]

    def _processed(self, row: Sequence[Any]) -> list[Any]:
        values = list(row)
        for index, process in self.results:
            values[index] = process(values[index])
        return values


def direct_read(statement: Select[Any], dialect: Dialect) -> DirectRead | None:
    """`statement` compiled for a direct read on `dialect`; None when it is not marked `DIRECT` or cannot be run
    directly (another driver, or parameters SQLAlchemy renders at execution, such as an expanding ``IN``)."""
    if not statement.get_execution_options().get(DIRECT):
        return None
    return _compiled(statement, dialect)


@lru_cache(maxsize=256)  # marked statements are built once each; the cache holds them, so identities stay unique
def _compiled(statement: Select[Any], dialect: Dialect) -> DirectRead | None:
    fetch = _FETCH.get(dialect.driver)
    if fetch is None:
        return None
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
    results = tuple(
        (index, process)
        for index, column in enumerate(statement.selected_columns)
        if (process := column.type.dialect_impl(dialect).result_processor(dialect, None)) is not None
    )
    return DirectRead(compiled.string, parameters, results, fetch)


_REQUIRED = object()


def _bound(given: Mapping[str, Any], name: str, process: Processor | None, bound: Any) -> Any:
    value = given.get(name, bound)
    if value is _REQUIRED:
        raise KeyError(f"no value for the statement's {name!r} parameter")
    return value if process is None else process(value)


async def _fetch_asyncpg(connection: Any, sql: str, values: list[Any]) -> Any:
    return await connection.fetch(sql, *values)


async def _fetch_aiosqlite(connection: Any, sql: str, values: list[Any]) -> Any:
    return await connection.execute_fetchall(sql, values)


_FETCH: dict[str, Callable[[Any, str, list[Any]], Any]] = {"asyncpg": _fetch_asyncpg, "aiosqlite": _fetch_aiosqlite}
