"""Async engine and session factory for SQLite (aiosqlite) and PostgreSQL (asyncpg) from one code path."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import InvalidatePoolError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.pool import PoolResetState

from integrations.store.changes import ChangeFeed, tracked

POOL_SIZE = {"postgresql": 16, "sqlite": 20}
"""Connections kept per process by default: enough for the requests a worker typically serves at once (with 10,
16 concurrent requests opened and closed a connection every 70 requests or so, each costing the gateway and the
server a backend's start-up). A PostgreSQL server has its own limit (100 by default, 3 of them reserved) to share
between workers, so its pool lends only a quarter as many again in bursts: 20 per worker at most, as before, so
four workers fit; a SQLite file's connections cost only a thread each."""

PING_IDLE_AFTER = 1.0
"""Seconds a pooled server connection may sit unused before it is pinged on checkout (see `_ping_if_idle`)."""


def create_engine(
    url: str, *, pool_size: int | None = None, echo: bool = False, ping_idle_after: float = PING_IDLE_AFTER
) -> AsyncEngine:
    """Create the engine for `url`; SQLite connections get foreign keys, WAL and a busy timeout.

    The pool keeps `pool_size` connections (`POOL_SIZE` when None) and lends more in bursts (as many again for
    SQLite, a quarter as many for a server); a connection lent beyond `pool_size` is closed when it comes back, so
    the pool should cover the requests a worker serves at once.
    """
    parsed = make_url(url)
    if pool_size is None:
        pool_size = POOL_SIZE.get(parsed.get_backend_name(), 10)
    kwargs: dict[str, Any] = {"echo": echo}
    if parsed.get_backend_name() == "sqlite":
        kwargs["connect_args"] = {"timeout": 30}
        if _on_disk(parsed):
            # SQLAlchemy's default here kept 5: under 16 concurrent requests every returned connection beyond them
            # was closed and reopened (aiosqlite starts a thread per connection, then four PRAGMAs), 0.6 times a
            # request, which cost a Q1 request 20% of its time.
            kwargs.update(pool_size=pool_size, max_overflow=pool_size)
        kwargs["pool_reset_on_return"] = None  # `_rollback_if_open` instead
    else:
        kwargs.update(pool_size=pool_size, max_overflow=pool_size // 4, pool_recycle=1800)
    engine = create_async_engine(parsed, **kwargs)
    if parsed.get_backend_name() == "sqlite":
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        event.listen(engine.sync_engine, "reset", _rollback_if_open)
    else:
        _ping_if_idle(engine, ping_idle_after)
    return engine


def _ping_if_idle(engine: AsyncEngine, idle_after: float) -> None:
    """Ping a server connection on checkout when it has been idle for `idle_after` seconds; one that does not
    answer is replaced, with every older connection of the pool, before anyone uses it (as `pool_pre_ping` does).

    SQLAlchemy's `pool_pre_ping` pings on every checkout: a round trip and about 180 µs of CPU per statement here,
    since the store lends a connection per statement. A connection used a moment ago is very likely alive, so, like
    HikariCP's `aliveBypassWindowMs` (500 ms), the ping is skipped then. A server that went away within that window
    fails the statement in hand instead; SQLAlchemy then invalidates the pool, and the store runs a failed read
    once more (`StoreSession._retried`), so only a write in flight at that moment fails.
    """
    pool = engine.sync_engine.pool
    dialect = engine.dialect

    def stamp(_dbapi_connection: Any, record: Any, *_args: Any) -> None:
        record.info[_LAST_USED] = time.monotonic()

    def checkout(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        if time.monotonic() - record.info.get(_LAST_USED, 0.0) < idle_after:
            return
        try:
            dialect.do_ping(dbapi_connection)  # the driver's own ping: no transaction left open behind it
        except dialect.loaded_dbapi.Error as error:
            if dialect.is_disconnect(error, dbapi_connection, None):
                raise InvalidatePoolError(f"connection did not answer a ping: {error}") from error
            raise

    event.listen(pool, "connect", stamp)
    event.listen(pool, "checkin", stamp)
    event.listen(pool, "checkout", checkout)


_LAST_USED = "gateway_last_used"


def _on_disk(url: URL) -> bool:
    """A SQLite file, not an in-memory database (which SQLAlchemy serves from one shared connection)."""
    database = url.database or ""
    return database not in ("", ":memory:") and url.query.get("mode") != "memory"


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA journal_mode=WAL")  # in-memory databases answer "memory" and stay as they are
    cursor.close()


def _rollback_if_open(dbapi_connection: Any, _record: Any, state: PoolResetState) -> None:
    """A SQLite connection coming back to the pool is rolled back only if a transaction is open (SQLAlchemy's
    documented custom reset, with ``pool_reset_on_return=None``). The default rolls back every time: a trip to
    aiosqlite's thread (about 70 µs) for each direct read (`direct.py`), which opens none. Connections SQLAlchemy's
    own `Connection` returns have been reset already, and one the garbage collector found cannot be touched."""
    if state.transaction_was_reset or not state.asyncio_safe:
        return
    try:
        in_transaction = dbapi_connection.driver_connection.in_transaction
    except ValueError:  # closed: nothing to roll back, and its next use finds it dead (as SQLAlchemy's reset does)
        return
    if in_transaction:
        dbapi_connection.rollback()


def create_sessionmaker(engine: AsyncEngine, *, changes: ChangeFeed | None = None) -> async_sessionmaker[AsyncSession]:
    """Sessions for `engine`; with `changes`, every commit announces the tags of what it changed there."""
    tracking = tracked(changes) if changes is not None else {}
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False, **tracking)
