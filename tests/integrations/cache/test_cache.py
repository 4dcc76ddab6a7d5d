"""Cache backends: the in-memory LRU, and `RedisCache` against a redis-server process this module starts itself
(its own port, no persistence; `tests.support.redis_server`), including what happens while that process is
stopped, frozen and restarted."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable

import pytest
from redis.asyncio import Redis

from integrations.cache import cache_from_url
from integrations.cache.memory import MemoryCache
from integrations.cache.redis import RedisCache
from tests.support.redis_server import RedisServer

FAIL_FAST = 0.5  # seconds: a cache call while Redis is away must not hold a request up longer than this


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# --- MemoryCache ----------------------------------------------------------------------------------------------


async def test_memory_round_trip_get_many_and_delete() -> None:
    cache = MemoryCache()
    assert await cache.get("a") is None
    await cache.set("a", b"1", 60)
    await cache.set("b", b"2", 60)
    assert await cache.get("a") == b"1"
    assert await cache.get_many(["a", "missing", "b"]) == [b"1", None, b"2"]
    assert await cache.get_many([]) == []
    await cache.set("a", b"3", 60)  # overwrite
    assert await cache.get("a") == b"3"
    await cache.delete("a", "missing")
    assert await cache.get_many(["a", "b"]) == [None, b"2"]
    await cache.aclose()
    assert await cache.get("b") is None


async def test_memory_entries_expire_after_their_ttl() -> None:
    clock = FakeClock()
    cache = MemoryCache(clock=clock)
    await cache.set("short", b"s", 1.5)
    await cache.set("long", b"l", 10)
    await cache.set("never stored", b"x", 0)
    clock.now += 1.4
    assert await cache.get_many(["short", "long", "never stored"]) == [b"s", b"l", None]
    clock.now += 0.1  # exactly at the deadline: gone
    assert await cache.get("short") is None
    assert await cache.get("long") == b"l"
    clock.now += 8.5
    assert await cache.get("long") is None


async def test_memory_is_bounded_and_evicts_the_least_recently_used() -> None:
    cache = MemoryCache(max_entries=3)
    for key in ("a", "b", "c"):
        await cache.set(key, key.encode(), 60)
    assert await cache.get("a") == b"a"  # a is now the most recently used; b the least
    await cache.set("d", b"d", 60)
    assert await cache.get_many(["a", "b", "c", "d"]) == [b"a", None, b"c", b"d"]
    await cache.set("c", b"c2", 60)  # writing counts as a use too: a is now the least recently used
    await cache.set("e", b"e", 60)
    assert await cache.get_many(["a", "c", "d", "e"]) == [None, b"c2", b"d", b"e"]


async def test_cache_from_url_without_url_is_memory() -> None:
    cache = cache_from_url(None, max_entries=1)
    assert isinstance(cache, MemoryCache)
    await cache.set("a", b"1", 60)
    await cache.set("b", b"2", 60)
    assert await cache.get_many(["a", "b"]) == [None, b"2"]


# --- RedisCache against its own redis-server ------------------------------------------------------------------


@pytest.fixture
def running_redis(redis_server: RedisServer) -> RedisServer:
    """The module's redis-server, started again if an earlier test left it stopped."""
    return redis_server.ensure_started()


@pytest.fixture
async def cache(running_redis: RedisServer, prefix: str) -> AsyncIterator[RedisCache]:
    cache = cache_from_url(running_redis.url, prefix=prefix)
    assert isinstance(cache, RedisCache)
    yield cache
    await cache.aclose()


@pytest.fixture
async def raw(running_redis: RedisServer) -> AsyncIterator[Redis]:
    """A plain client that sees the keys as Redis stores them."""
    client = Redis(host="127.0.0.1", port=running_redis.port, socket_timeout=2)
    yield client
    await client.aclose()


async def test_redis_round_trip(cache: RedisCache) -> None:
    assert await cache.get("k") is None
    await cache.set("k", b"\x00binary\xff", 60)
    await cache.set("other", b"2", 60)
    assert await cache.get("k") == b"\x00binary\xff"
    assert await cache.get_many(["k", "missing", "other"]) == [b"\x00binary\xff", None, b"2"]
    assert await cache.get_many([]) == []
    await cache.delete("k", "missing")
    assert await cache.get_many(["k", "other"]) == [None, b"2"]
    await cache.delete()  # nothing to delete is not an error
    assert cache.failures == 0


async def test_redis_applies_the_prefix_and_a_ttl_to_every_key(cache: RedisCache, raw: Redis, prefix: str) -> None:
    await cache.set("a", b"1", 30)
    await cache.set("b", b"2", 0.0004)  # below a millisecond: still expires (1 ms), never lives forever
    await cache.set("c", b"3", 0)  # no TTL, no write
    assert await raw.get(f"{prefix}a") == b"1"
    assert await raw.get("a") is None
    ttl = await raw.pttl(f"{prefix}a")
    assert 29_000 < ttl <= 30_000
    await asyncio.sleep(0.01)
    assert await raw.exists(f"{prefix}b", f"{prefix}c") == 0
    for key in await raw.keys(f"{prefix}*"):
        assert await raw.pttl(key) > 0  # -1 would mean a key without expiry


async def test_redis_keys_expire(cache: RedisCache) -> None:
    await cache.set("k", b"v", 0.05)
    assert await cache.get("k") == b"v"
    await asyncio.sleep(0.1)
    assert await cache.get("k") is None


async def timed(call: Awaitable[object]) -> float:
    started = time.perf_counter()
    await call
    return time.perf_counter() - started


async def test_redis_fails_open_while_stopped_and_recovers_after_a_restart(
    running_redis: RedisServer, cache: RedisCache
) -> None:
    await cache.set("k", b"before", 60)
    assert await cache.get("k") == b"before"  # the pool now holds a connection that is about to go stale

    running_redis.stop()
    started = time.perf_counter()
    assert await cache.get("k") is None
    assert time.perf_counter() - started < FAIL_FAST
    assert await cache.get_many(["k", "x"]) == [None, None]
    assert await timed(cache.set("k", b"during", 60)) < FAIL_FAST
    assert await timed(cache.delete("k")) < FAIL_FAST
    assert await timed(cache.get_many(["k"])) < FAIL_FAST
    assert cache.failures == 5

    running_redis.start()  # the same port, empty (no persistence)
    assert await cache.get("k") is None
    await cache.set("k", b"after", 60)
    assert await cache.get("k") == b"after"
    assert cache.failures == 5  # the same object reconnected by itself, without a failed call


async def test_redis_fails_open_within_the_timeout_when_the_server_hangs(
    running_redis: RedisServer, prefix: str
) -> None:
    cache = RedisCache.from_url(running_redis.url, prefix=prefix, timeout=0.05)
    try:
        await cache.set("k", b"v", 60)
        running_redis.freeze()  # accepts connections (the kernel does), never answers
        try:
            started = time.perf_counter()
            assert await cache.get("k") is None
            await cache.set("k", b"w", 60)
            await cache.delete("k")
            assert await cache.get_many(["k"]) == [None]
            assert time.perf_counter() - started < 4 * FAIL_FAST
            assert cache.failures == 4
        finally:
            running_redis.thaw()
        await cache.set("k", b"again", 60)
        assert await cache.get("k") == b"again"
    finally:
        await cache.aclose()


async def test_redis_restarted_between_two_calls_is_used_again_without_a_failure(
    running_redis: RedisServer, cache: RedisCache
) -> None:
    await cache.set("k", b"before", 60)  # leaves an idle connection in the pool, stale once Redis restarts
    running_redis.stop()
    running_redis.start()
    assert await cache.get("k") is None  # the restarted Redis is empty
    await cache.set("k", b"after", 60)
    assert await cache.get("k") == b"after"
    assert cache.failures == 0


async def test_redis_cluster_reads_and_deletes_keys_of_many_slots(redis_cluster: RedisServer, prefix: str) -> None:
    """`redis+cluster://`: a prefixed key set spans hash slots, so one MGET cannot serve it."""
    cache = cache_from_url(f"redis+cluster://127.0.0.1:{redis_cluster.port}", prefix=prefix)
    assert isinstance(cache, RedisCache)
    try:
        keys = [f"key-{n}" for n in range(20)]
        for n, key in enumerate(keys):
            await cache.set(key, str(n).encode(), 60)
        assert await cache.get("key-3") == b"3"
        assert await cache.get_many([*keys, "missing"]) == [str(n).encode() for n in range(20)] + [None]
        await cache.delete(*keys[:10])
        assert await cache.get_many(keys) == [None] * 10 + [str(n).encode() for n in range(10, 20)]
        assert cache.failures == 0

        redis_cluster.stop()
        started = time.perf_counter()
        assert await cache.get_many(keys) == [None] * 20
        await cache.delete(*keys)
        assert await cache.get("key-3") is None
        assert time.perf_counter() - started < 3 * FAIL_FAST
        assert cache.failures == 3
    finally:
        await cache.aclose()
