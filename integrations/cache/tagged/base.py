"""A cache of responses indexed by tags (`product:5`, `order:*`), so that a write can drop every response it
made stale; backends are chosen by URL.

A fill must not resurrect what an invalidation just removed. The caller reads `generation()` before it computes a
response and passes it to `put(..., since=generation)`; `invalidate()` bumps the generation and stamps each tag with
it, and `put()` stores nothing when one of its tags was stamped after `since`:

    since = await store.generation()      # None: store unavailable, do not fill
    value = await compute()               # meanwhile another request invalidates "product:5"
    await store.put(key, value, 60, ["product:5"], since)   # -> False, nothing stored

Stamps live `stamp_ttl` seconds (300 by default): a fill that takes longer than that may store stale data.
Like `Cache`, backends fail open and never raise: reads miss, fills and invalidations report False.
"""

from __future__ import annotations

from collections.abc import Collection
from contextlib import AbstractAsyncContextManager
from typing import Protocol


class TaggedStore(Protocol):
    failures: int
    """Failed calls to the backing service (always 0 in memory)."""

    async def generation(self) -> int | None:
        """The current invalidation sequence number; None when the store is unavailable."""
        ...

    async def get(self, key: str) -> bytes | None: ...

    async def put(self, key: str, value: bytes, ttl: float, tags: Collection[str], since: int) -> bool:
        """Store `value` for `ttl` seconds, indexed under every tag, unless one of `tags` was invalidated after
        generation `since` (or the store is unavailable): then store nothing and return False."""
        ...

    async def invalidate(self, tags: Collection[str]) -> bool:
        """Delete every entry indexed under any of `tags` and stamp the tags; False when the store is unavailable."""
        ...

    def lock(self, key: str, ttl: float) -> AbstractAsyncContextManager[bool]:
        """A lock held at most `ttl` seconds against stampedes: True if acquired (released on exit), False if
        someone else holds it; True when the store cannot tell (fail open: do the work)."""
        ...

    async def aclose(self) -> None: ...


def tagged_store_from_url(
    url: str | None,
    *,
    prefix: str = "gw:",
    max_entries: int = 10_000,
    near_ttl: float = 0.0,
    near_max_bytes: int = 32 << 20,
) -> TaggedStore:
    """`redis://`, `rediss://`, `unix://` or `redis+cluster://` → Redis; None → in-memory.

    `near_ttl` > 0 puts a near cache (`near.py`) in front of a single Redis server: call its `start()` once
    the event loop runs."""
    if not url:
        from integrations.cache.tagged.memory import MemoryTaggedStore

        return MemoryTaggedStore(max_entries=max_entries)
    from integrations.cache.tagged.redis import RedisTaggedStore

    store = RedisTaggedStore.from_url(url, prefix=prefix)
    if near_ttl <= 0 or url.startswith("redis+cluster://"):
        return store
    from integrations.cache.redis import listener_client
    from integrations.cache.tagged.near import NearCachedStore

    return NearCachedStore(store, listener_client(url), ttl=near_ttl, max_bytes=near_max_bytes)
