"""The in-process tagged store: a bounded LRU of entries with expiry, and tag → key sets kept exact.

A tag's set holds exactly the live entries indexed under it (an evicted, expired or overwritten entry leaves every
set), so memory is bounded by `max_entries` entries, their tags, and at most `max_entries` stamps.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Collection
from contextlib import asynccontextmanager
from typing import NamedTuple


class _Entry(NamedTuple):
    expires: float
    value: bytes
    tags: frozenset[str]


class MemoryTaggedStore:
    def __init__(
        self,
        *,
        max_entries: int = 10_000,
        stamp_ttl: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._tags: dict[str, set[str]] = {}
        self._stamps: OrderedDict[str, tuple[float, int]] = OrderedDict()  # tag -> (expires, generation), by age
        self._generation = 0
        self._floor = 0  # a fill that started before this generation may have lost a stamp: refused
        self._max_entries = max_entries
        self._stamp_ttl = stamp_ttl
        self._clock = clock
        self.failures = 0

    async def generation(self) -> int | None:
        return self._generation

    async def get(self, key: str) -> bytes | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry.expires <= self._clock():
            self._drop(key)
            return None
        self._entries.move_to_end(key)
        return entry.value

    async def put(self, key: str, value: bytes, ttl: float, tags: Collection[str], since: int) -> bool:
        now = self._clock()
        if ttl <= 0 or not self._floor <= since <= self._generation:
            return False
        for tag in tags:
            stamp = self._stamps.get(tag)
            if stamp is not None and stamp[0] > now and stamp[1] > since:
                return False
        self._drop(key)
        self._entries[key] = _Entry(now + ttl, value, frozenset(tags))
        for tag in tags:
            self._tags.setdefault(tag, set()).add(key)
        while len(self._entries) > self._max_entries:
            self._drop(next(iter(self._entries)))
        return True

    async def invalidate(self, tags: Collection[str]) -> bool:
        if not tags:
            return True
        self._generation += 1
        now = self._clock()
        for tag in tags:
            for key in self._tags.pop(tag, ()):
                self._drop(key)
            self._stamps[tag] = (now + self._stamp_ttl, self._generation)
            self._stamps.move_to_end(tag)
        while self._stamps:  # oldest first; dropping one early raises the floor, so safety is kept
            tag, (expires, generation) = next(iter(self._stamps.items()))
            if expires > now and len(self._stamps) <= self._max_entries:
                break
            del self._stamps[tag]
            if expires > now:
                self._floor = max(self._floor, generation)
        return True

    @asynccontextmanager
    async def lock(self, key: str, ttl: float) -> AsyncIterator[bool]:
        """One process needs no stampede lock: always acquired."""
        yield True

    async def aclose(self) -> None:
        self._entries.clear()
        self._tags.clear()
        self._stamps.clear()

    def _drop(self, key: str) -> None:
        entry = self._entries.pop(key, None)
        if entry is None:
            return
        for tag in entry.tags:
            keys = self._tags.get(tag)
            if keys is not None:
                keys.discard(key)
                if not keys:
                    del self._tags[tag]
