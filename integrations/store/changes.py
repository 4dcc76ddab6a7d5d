"""Report the tags of every committed change (see `tags.py`) to whoever keeps derived copies of the data.

Sessions of a sessionmaker made with a `ChangeFeed` are `TrackedSession`s: their unit-of-work flushes and their
INSERT/UPDATE/DELETE statements add tags to the transaction, and a commit hands them to the feed (a rollback
forgets them). Nothing has to remember to announce a change: a write that commits is announced.

Where the feed delivers: inside `feed.collecting()` (a request that must not answer before the cached copies
of what it changed are gone) the tags are gathered for the caller to act on; otherwise (the outbox worker, a
task outliving its request) the feed's listener runs in the background.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterator
from contextvars import ContextVar
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import ORMExecuteState, Session, UOWTransaction
from sqlalchemy.sql.dml import UpdateBase

from integrations.store.tags import row_tags, write_tags

logger = logging.getLogger("integrations.store")

FEED = "gateway.change_feed"
_PENDING = "gateway.pending_tags"

Listener = Callable[[frozenset[str]], Awaitable[object]]


class Collector:
    def __init__(self) -> None:
        self.tags: set[str] = set()
        self.open = True


_COLLECTOR: ContextVar[Collector | None] = ContextVar("gateway_change_collector", default=None)


class ChangeFeed:
    def __init__(self) -> None:
        self._listeners: list[Listener] = []
        self._background: set[asyncio.Task[None]] = set()

    def listen(self, listener: Listener) -> None:
        self._listeners.append(listener)

    @contextlib.contextmanager
    def collecting(self) -> Iterator[Collector]:
        """Gather the tags committed in this context (and tasks it starts) instead of announcing them."""
        collector = Collector()
        token = _COLLECTOR.set(collector)
        try:
            yield collector
        finally:
            collector.open = False  # a task that outlives the block announces its own commits
            _COLLECTOR.reset(token)

    async def announce(self, tags: frozenset[str]) -> None:
        for listener in self._listeners:
            try:
                await listener(tags)
            except Exception:
                logger.exception("change listener failed for %d tags", len(tags))

    def committed(self, tags: set[str]) -> None:
        collector = _COLLECTOR.get()
        if collector is not None and collector.open:
            collector.tags.update(tags)
            return
        if not self._listeners:
            return
        task = asyncio.get_running_loop().create_task(self.announce(frozenset(tags)))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def drain(self) -> None:
        """Wait for announcements running in the background (at shutdown, and in tests)."""
        while self._background:
            await asyncio.gather(*self._background, return_exceptions=True)


class TrackedSession(Session):
    """A Session whose committed changes reach the `ChangeFeed` in its `info`."""


def _pending(session: Session) -> set[str] | None:
    if FEED not in session.info:
        return None
    pending: set[str] = session.info.setdefault(_PENDING, set())
    return pending


@event.listens_for(TrackedSession, "after_flush")
def _after_flush(session: Session, _context: UOWTransaction) -> None:
    pending = _pending(session)
    if pending is None:
        return
    for row in session.new:
        pending |= row_tags(row)
    for row in session.deleted:
        pending |= row_tags(row)
    for row in session.dirty:
        if session.is_modified(row):
            pending |= row_tags(row)


UNANNOUNCED = {"announce_changes": False}
"""Execution options of a write no answer can reflect (an API key's last use, which no field exposes): the feed does
not hear of it. Every tag announced empties every instance's near cache, so such a write would only cost hits."""


@event.listens_for(TrackedSession, "do_orm_execute")
def _do_orm_execute(state: ORMExecuteState) -> None:
    if not (state.is_insert or state.is_update or state.is_delete):
        return
    if state.execution_options.get("announce_changes", True) is False:
        return
    pending = _pending(state.session)
    if pending is not None and isinstance(state.statement, UpdateBase):
        pending |= write_tags(state.statement)


@event.listens_for(TrackedSession, "after_commit")
def _after_commit(session: Session) -> None:
    feed: ChangeFeed | None = session.info.get(FEED)
    tags: set[str] | None = session.info.pop(_PENDING, None)
    if feed is not None and tags:
        feed.committed(tags)


@event.listens_for(TrackedSession, "after_rollback")
def _after_rollback(session: Session) -> None:
    session.info.pop(_PENDING, None)


def tracked(feed: ChangeFeed) -> dict[str, Any]:
    """Keyword arguments for `async_sessionmaker` that make its sessions report to `feed`."""
    return {"sync_session_class": TrackedSession, "info": {FEED: feed}}
