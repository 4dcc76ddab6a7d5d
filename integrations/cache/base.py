"""One small interface for every cached byte the gateway keeps; backends are chosen by URL.

Every write has a TTL and every key a configurable prefix. A cache is an optimisation: backends fail open
(a read that fails is a miss, a write that fails is dropped) and never raise to the caller.
"""

from __future__ import annotations

from typing import Protocol


class Cache(Protocol):
    async def get(self, key: str) -> bytes | None: ...

    async def get_many(self, keys: list[str]) -> list[bytes | None]: ...

    async def set(self, key: str, value: bytes, ttl: float) -> None: ...

    async def delete(self, *keys: str) -> None: ...

    async def aclose(self) -> None: ...


def cache_from_url(url: str | None, *, prefix: str = "gw:", max_entries: int = 10_000) -> Cache:
    """`redis://`, `rediss://`, `unix://` or `redis+cluster://` → Redis; None → in-memory LRU."""
    if not url:
        from integrations.cache.memory import MemoryCache

        return MemoryCache(max_entries=max_entries)
    from integrations.cache.redis import RedisCache

    return RedisCache.from_url(url, prefix=prefix)
