"""The per-request unit of work.

One `StoreSession` per GraphQL request, owned by the request context and closed when the request ends. Loaders
from several resolvers dispatch their batches concurrently; an `AsyncSession` (and its single connection) must
never be used by two tasks at once, so every statement goes through one lock.

A read ends its transaction at once, handing the connection back to the pool: a request never holds a
connection while it waits for something else (a provider call, another session of the same pool). Holding one
there deadlocked the pool under load once every connection belonged to a request waiting for another.

Reads of records (`records`) skip the ORM: the loaders' batches and the pages run on the driver directly when they
can (`direct.py`), anything else on a pool connection of its own.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any, TypeVar

from sqlalchemy import Select
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.sql import Executable

from integrations.errors import StoreUnavailableError
from integrations.store.direct import DirectReadFailed, may_read_directly, read_directly
from integrations.store.tags import read_tags

logger = logging.getLogger("integrations.store")

T = TypeVar("T")
R = TypeVar("R")


class StoreSession:
    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], *, record_reads: bool = False) -> None:
        self._sessionmaker = sessionmaker
        self._orm: AsyncSession | None = None  # see `_session`
        self._engine = _engine_of(sessionmaker)
        self.dialect: str = self._engine.dialect.name
        self._lock = asyncio.Lock()
        self._after_write: list[Callable[[], None]] = []
        self.reads: set[str] | None = set() if record_reads else None
        """With `record_reads`: the tags (see `tags.py`) of every row and listing read, for the response cache."""

    async def scalars(self, statement: Select[T], parameters: dict[str, Any] | None = None) -> list[T]:
        rows = await self._retried(lambda: self._scalars(statement, parameters))
        if self.reads is not None:
            self.reads |= read_tags(statement, rows, parameters)
        return rows

    async def records(
        self, statement: Select[Any], record: Callable[..., R], parameters: dict[str, Any] | None = None
    ) -> list[R]:
        """`record(*row)` for each row of `statement` (see `records.py`): read-only values, no ORM entities. A statement
        marked for it (`direct.DIRECT`, `direct.DIRECT_BY_SHAPE`) is run on the driver itself when it can be, else (or
        when that fails) as any other."""
        rows = None
        if may_read_directly(statement, self._engine):
            rows = await self._direct(statement, parameters or {})
        if rows is None:
            rows = await self._retried(lambda: self._rows_past_session(statement, parameters))
        values = [record(*row) for row in rows]
        if self.reads is not None:
            self.reads |= read_tags(statement, values, parameters)
        return values

    async def scalar(self, statement: Select[T]) -> T | None:
        value = await self._retried(lambda: self._scalar(statement))
        if self.reads is not None:
            self.reads |= read_tags(statement, [value])
        return value

    async def rows(self, statement: Executable, parameters: dict[str, Any] | None = None) -> Sequence[Any]:
        rows = await self._retried(lambda: self._rows(statement, parameters))
        if self.reads is not None:
            self.reads |= read_tags(statement, parameters=parameters)
        return rows

    @staticmethod
    async def _retried(read: Callable[[], Awaitable[T]]) -> T:
        """`read` (one SELECT), run once more when its connection turned out to be dead (the server restarted or
        dropped it: SQLAlchemy then invalidates the pool's older connections too). Nothing to undo: it only read."""
        try:
            return await read()
        except StoreUnavailableError as error:
            cause = error.__cause__
            if not (isinstance(cause, DBAPIError) and cause.connection_invalidated):
                raise
        return await read()

    async def _scalars(self, statement: Select[T], parameters: dict[str, Any] | None) -> list[T]:
        async with self._read() as session:
            return list((await session.scalars(statement, parameters)).all())

    async def _scalar(self, statement: Select[T]) -> T | None:
        async with self._read() as session:
            return (await session.execute(statement)).scalar()

    async def _rows(self, statement: Executable, parameters: dict[str, Any] | None) -> Sequence[Any]:
        async with self._read() as session:
            rows: Sequence[Any] = (await session.execute(statement, parameters)).all()
        return rows

    async def _direct(self, statement: Select[Any], parameters: dict[str, Any]) -> Sequence[Any] | None:
        """`statement`'s rows read directly, or None when that could not be done: the caller then runs it through
        SQLAlchemy, which recovers from a lost connection or raises its own translation of the error."""
        async with self._lock:
            try:
                return await read_directly(self._engine, statement, parameters)
            except DirectReadFailed as failed:
                logger.warning("%s; running it through SQLAlchemy", failed)
                return None
            except _UNAVAILABLE as error:  # no connection to be had: as for any statement (`_translate`)
                unavailable = _unavailable(error)
                if unavailable is None:
                    raise
                raise unavailable from error

    async def _rows_past_session(self, statement: Select[Any], parameters: dict[str, Any] | None) -> Sequence[Any]:
        async with self._lock, _translate(), self._engine.connect() as connection:
            # Past the ORM session: a connection of the pool for this statement alone. On PostgreSQL in autocommit,
            # so that one SELECT costs no BEGIN and no ROLLBACK round trip (about 110 µs of CPU). SQLite's driver
            # sends neither for a SELECT, and switching its mode would cost two trips to aiosqlite's thread.
            if self.dialect == "postgresql":
                await connection.execution_options(isolation_level="AUTOCOMMIT")
            rows: Sequence[Any] = (await connection.execute(statement, parameters)).all()
        return rows

    def _session(self) -> AsyncSession:
        """The request's ORM session, made when first needed (most requests only read records)."""
        if self._orm is None:
            self._orm = self._sessionmaker()
        return self._orm

    @asynccontextmanager
    async def _read(self) -> AsyncIterator[AsyncSession]:
        """One statement in its own short transaction, ended before anyone else may use the session."""
        async with self._lock, _translate():
            session = self._session()
            try:
                yield session
            except BaseException:
                session.expunge_all()  # what was read stays readable: a rollback would expire it
                await session.rollback()
                raise
            await session.commit()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """Hold the session exclusively for a write; commit on success, roll back on any error."""
        async with self._lock:
            async with _translate():
                session = self._session()
            try:
                async with _translate():
                    yield session
                    await session.commit()
            except BaseException:
                await session.rollback()
                raise
        for callback in self._after_write:
            callback()

    def after_write(self, callback: Callable[[], None]) -> None:
        """Call `callback` after each committed `transaction`: what was read before may have changed (the request's
        loaders forget what they hold)."""
        self._after_write.append(callback)

    async def close(self) -> None:
        """Close once no statement is in flight: a resolver task the executor abandoned or cancelled may still be
        inside one, and closing under it raised IllegalStateChangeError out of the request (a 500). The `after_write`
        callbacks are dropped: the request's loaders, which they reach, hold this session, and that reference cycle
        would leave everything the request read to the cyclic garbage collector."""
        async with self._lock:
            self._after_write.clear()  # a transaction in flight ran its callbacks before this lock was free
            if self._orm is not None:
                await self._orm.close()


def _engine_of(sessionmaker: async_sessionmaker[AsyncSession]) -> AsyncEngine:
    bind = sessionmaker.kw.get("bind")
    assert isinstance(bind, AsyncEngine), "a store session is bound to the store's engine"
    return bind


_UNAVAILABLE = (OperationalError, InterfaceError, OSError, ConnectionError)
"""What may mean the database is unavailable (`_unavailable` tells)."""


@asynccontextmanager
async def _translate() -> AsyncIterator[None]:
    try:
        yield
    except _UNAVAILABLE as exc:
        unavailable = _unavailable(exc)
        if unavailable is None:
            raise
        raise unavailable from exc


def _unavailable(exc: BaseException) -> StoreUnavailableError | None:
    """`StoreUnavailableError` for an error that says the database cannot be reached; None for any other."""
    if isinstance(exc, DBAPIError) and not exc.connection_invalidated and not _is_connectivity(exc):
        return None
    return StoreUnavailableError("the database is unavailable")


def _is_connectivity(exc: DBAPIError) -> bool:
    text = str(exc.orig).lower()
    return any(word in text for word in ("connect", "connection", "timeout", "unable to open", "closed"))
