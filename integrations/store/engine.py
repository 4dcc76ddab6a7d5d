"""Async engine and session factory for SQLite (aiosqlite) and PostgreSQL (asyncpg) from one code path."""

from __future__ import annotations

from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from integrations.store.changes import ChangeFeed, tracked


def create_engine(url: str, *, pool_size: int = 10, echo: bool = False) -> AsyncEngine:
    """Create the engine for `url`; SQLite connections get foreign keys, WAL and a busy timeout."""
    parsed = make_url(url)
    kwargs: dict[str, Any] = {"echo": echo}
    if parsed.get_backend_name() == "sqlite":
        kwargs["connect_args"] = {"timeout": 30}
    else:
        kwargs.update(pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True, pool_recycle=1800)
    engine = create_async_engine(parsed, **kwargs)
    if parsed.get_backend_name() == "sqlite":
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
    return engine


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA journal_mode=WAL")  # in-memory databases answer "memory" and stay as they are
    cursor.close()


def create_sessionmaker(engine: AsyncEngine, *, changes: ChangeFeed | None = None) -> async_sessionmaker[AsyncSession]:
    """Sessions for `engine`; with `changes`, every commit announces the tags of what it changed there."""
    tracking = tracked(changes) if changes is not None else {}
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False, **tracking)
