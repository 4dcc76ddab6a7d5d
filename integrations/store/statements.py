"""One hook for every SQL statement an engine runs, whichever way it runs.

Most statements go through SQLAlchemy, whose cursor events see them; the loaders' constant reads go to the driver
directly (`direct.py`) and only `direct.observe_direct_reads` sees those. Counting or timing statements through
`observe_statements` covers both, so a counter cannot miss the reads that matter most for batching.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from integrations.store.direct import StatementObserver, observe_direct_reads


def observe_statements(engine: AsyncEngine, observer: StatementObserver) -> Callable[[], None]:
    """Tell `observer` about every statement `engine` runs, through SQLAlchemy or directly, once it succeeded or
    failed; returns the function that stops it."""
    sync_engine = engine.sync_engine
    started = object()  # this registration's key in a connection's `info`: a stack of start times

    def before(conn: Any, _cursor: Any, _statement: str, _parameters: Any, _context: Any, _many: bool) -> None:
        conn.info.setdefault(started, []).append(time.perf_counter())

    def after(conn: Any, _cursor: Any, statement: str, _parameters: Any, _context: Any, _many: bool) -> None:
        observer(statement, time.perf_counter() - conn.info[started].pop(), None)

    def failed(context: Any) -> None:
        stack = context.connection.info.get(started) if context.connection is not None else None
        if stack:  # the statement had started: not a failure to connect
            observer(context.statement or "", time.perf_counter() - stack.pop(), context.original_exception)

    event.listen(sync_engine, "before_cursor_execute", before)
    event.listen(sync_engine, "after_cursor_execute", after)
    event.listen(sync_engine, "handle_error", failed)
    stop_direct = observe_direct_reads(engine, observer)

    def stop() -> None:
        event.remove(sync_engine, "before_cursor_execute", before)
        event.remove(sync_engine, "after_cursor_execute", after)
        event.remove(sync_engine, "handle_error", failed)
        stop_direct()

    return stop
