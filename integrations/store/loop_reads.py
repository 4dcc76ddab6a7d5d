"""SQLite reads run in the event loop's own thread, on a read-only sqlite3 connection of that thread.

aiosqlite runs each connection in a thread of its own, and a statement is a trip there and back: a queue, a
future set from that thread, the event loop woken through its self-pipe, the GIL handed over each way. For a
loader's lookup by key, which SQLite answers in about 9 µs, that trip is the cost: about 60 µs of CPU one at a
time, and 200 µs with 16 requests in flight (16 threads taking the GIL from the loop and from each other).

So the loaders' lookups by primary key (constant statements of at most `direct.LOOP_MAX_KEYS` keys, so at most as
many rows) run here instead, synchronously: the loop waits for SQLite as long as the lookup takes (microseconds
per key), instead of for the trip. Lookups by foreign key (a customer's orders: as many rows as the data holds),
larger batches, pages and every other statement, whose cost depends on the data, stay on aiosqlite.

- The connection is read-only (`PRAGMA query_only`) and in autocommit: each read sees every committed write, as a
  pool connection's does. In WAL mode (the store's, `engine._sqlite_pragmas`) a reader does not wait for writers.
- It never waits for a lock (busy timeout 0): a read that would (a writer holding the database exclusively)
  fails at once and the caller runs it on aiosqlite, whose busy timeout waits in its own thread.
- One connection per engine and thread (the loop's); closed when the engine is disposed.
- Only for a database file named by a plain path: an in-memory database is one connection's own, and a URL's
  query options are aiosqlite's to apply.
"""

from __future__ import annotations

import sqlite3
import threading
import weakref
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Engine, event
from sqlalchemy.ext.asyncio import AsyncEngine


class _Connections:
    """One engine's connections, by thread."""

    def __init__(self, database: str) -> None:
        self.database = database
        self.by_thread: dict[int, sqlite3.Connection] = {}

    def get(self) -> sqlite3.Connection:
        thread = threading.get_ident()
        connection = self.by_thread.get(thread)
        if connection is None:
            # check_same_thread off only so that `close` may close them from any thread; each is used by its own.
            connection = sqlite3.connect(self.database, timeout=0, isolation_level=None, check_same_thread=False)
            connection.execute("PRAGMA query_only=ON")
            self.by_thread[thread] = connection
        return connection

    def drop(self) -> None:
        """Drop the calling thread's connection (after an error that may have broken it)."""
        connection = self.by_thread.pop(threading.get_ident(), None)
        if connection is not None:
            connection.close()

    def close(self) -> None:
        connections, self.by_thread = list(self.by_thread.values()), {}
        for connection in connections:
            connection.close()


_engines: weakref.WeakKeyDictionary[Engine, _Connections | None] = weakref.WeakKeyDictionary()


def read_in_loop(engine: AsyncEngine, sql: str, values: Sequence[Any]) -> list[Any] | None:
    """The rows of `sql` read on this thread's connection, or None when they cannot be read here (not a SQLite
    file; the database busy or the read failed): the caller then reads them on aiosqlite."""
    sync_engine = engine.sync_engine
    try:
        connections = _engines[sync_engine]
    except KeyError:
        connections = _engines[sync_engine] = _connections_for(sync_engine)
    if connections is None:
        return None
    try:
        return connections.get().execute(sql, values).fetchall()
    except sqlite3.Error:
        connections.drop()  # busy, or worse: a new connection next time, and this read on aiosqlite
        return None


def _connections_for(engine: Engine) -> _Connections | None:
    url = engine.url
    database = url.database or ""
    if url.get_backend_name() != "sqlite" or database in ("", ":memory:") or url.query:
        return None
    connections = _Connections(database)
    event.listen(engine, "engine_disposed", lambda _engine: connections.close())
    return connections
