"""One hook for every SQL statement an engine runs, whichever way it runs.

Most statements go through SQLAlchemy, whose cursor events see them; record reads (the loaders' batches and the
pages) go to the driver directly (`direct.py`) and only `direct.observe_direct_reads` sees those. Counting or
timing statements through `observe_statements` covers both, so a counter cannot miss the reads that matter most
for batching.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from integrations.store.direct import StatementObserver, observe_direct_reads, tell


def observe_statements(engine: AsyncEngine, observer: StatementObserver) -> Callable[[], None]:
    """Tell `observer` about every statement `engine` runs, through SQLAlchemy or directly, once it succeeded or
    failed (a cancelled one is not reported, on either path); returns the function that stops it. An observer that
    raises is logged: it never fails a statement or hides its error."""
    sync_engine = engine.sync_engine
    started = f"_gateway_started_{next(_registrations)}"  # this registration's start time, on the execution context

    def before(_conn: Any, _cursor: Any, _statement: str, _parameters: Any, context: Any, _many: bool) -> None:
        if context is not None:
            setattr(context, started, time.perf_counter())

    def after(_conn: Any, _cursor: Any, statement: str, _parameters: Any, context: Any, _many: bool) -> None:
        begun = getattr(context, started, None)
        if begun is not None:
            tell(observer, statement, time.perf_counter() - begun, None)

    def failed(exception: Any) -> None:
        begun = getattr(exception.execution_context, started, None)  # None: it failed before reaching the database
        if begun is not None and isinstance(exception.original_exception, Exception):
            tell(observer, exception.statement or "", time.perf_counter() - begun, exception.original_exception)

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


_registrations = itertools.count()
