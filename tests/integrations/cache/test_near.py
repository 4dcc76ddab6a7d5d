"""The near cache in front of the Redis tagged store: hits without a round trip, and never a read of what another
instance has invalidated (instances here are stores of their own, with their own connections, on one Redis)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack

import pytest
from redis.asyncio import Redis

from integrations.cache.redis import listener_client
from integrations.cache.tagged import tagged_store_from_url
from integrations.cache.tagged.near import NearCachedStore
from integrations.cache.tagged.redis import RedisTaggedStore
from tests.integrations.cache.test_tagged import SHARED_REDIS_URL, shared_redis, since
from tests.support.redis_server import RedisServer

SUBSCRIBED = 5.0  # seconds a listener may take to subscribe


async def open_near(url: str, prefix: str, *, ttl: float = 60.0, max_bytes: int = 1 << 20) -> NearCachedStore:
    store = NearCachedStore(
        RedisTaggedStore.from_url(url, prefix=prefix), listener_client(url), ttl=ttl, max_bytes=max_bytes
    )
    store.start()
    await asyncio.wait_for(store.invalidations.subscribed.wait(), SUBSCRIBED)
    return store


Instances = Callable[..., Awaitable[NearCachedStore]]


@pytest.fixture
async def shared_raw(prefix: str) -> AsyncIterator[Redis]:
    async with shared_redis(prefix) as client:
        yield client


@pytest.fixture
async def instances(shared_raw: Redis, prefix: str) -> AsyncIterator[Instances]:
    """Opens gateway instances' stores on the shared Redis (under this test's prefix), closed after the test."""
    async with AsyncExitStack() as stack:

        async def instance(ttl: float = 60.0, max_bytes: int = 1 << 20) -> NearCachedStore:
            store = await open_near(SHARED_REDIS_URL, prefix, ttl=ttl, max_bytes=max_bytes)
            stack.push_async_callback(store.aclose)
            return store

        yield instance


def entry_name(prefix: str, key: str) -> str:
    return f"{prefix}{{rc}}:e:{key}"


async def test_a_read_entry_is_served_from_memory_until_its_ttl(
    instances: Instances, shared_raw: Redis, prefix: str
) -> None:
    store = await instances(ttl=0.3)
    assert await store.put("k", b"value", 60, ["t"], await since(store))
    await shared_raw.delete(entry_name(prefix, "k"))  # gone from Redis: only the near copy can answer now
    assert await store.get("k") == b"value"
    assert store.hits == 1
    await asyncio.sleep(0.35)
    assert await store.get("k") is None  # its near copy expired, and Redis has nothing


async def test_a_near_copy_never_outlives_its_redis_ttl(instances: Instances, shared_raw: Redis, prefix: str) -> None:
    store = await instances(ttl=60)
    assert await store.put("short", b"s", 0.1, ["t"], await since(store))
    await asyncio.sleep(0.15)
    assert await store.get("short") is None


async def test_another_instances_invalidation_is_seen_by_the_very_next_read(
    instances: Instances,
) -> None:
    writer, reader = await instances(), await instances()
    for round_ in range(30):
        value = f"v{round_}".encode()
        assert await writer.put("k", value, 60, ["order:1"], await since(writer))
        assert await reader.get("k") == value
        assert await reader.get("k") == value  # from its near copy
        assert await writer.invalidate(["order:1"])
        await asyncio.sleep(0)  # the next request reaches the reader as I/O: after what its listener has received
        assert await reader.get("k") is None, f"round {round_}: a stale near copy was served"
    assert reader.hits == 30


async def test_an_invalidation_of_any_tag_empties_every_near_cache(
    instances: Instances, shared_raw: Redis, prefix: str
) -> None:
    writer, reader = await instances(), await instances()
    assert await writer.put("k", b"v", 60, ["product:1"], await since(writer))
    assert await reader.get("k") == b"v"
    await shared_raw.delete(entry_name(prefix, "k"))  # the reader's copy is all that is left
    assert await reader.get("k") == b"v"
    assert await writer.invalidate(["customer:9"])  # an unrelated tag: near copies are dropped all the same
    assert await reader.get("k") is None


async def test_the_invalidating_instance_drops_its_own_copies_before_it_returns(
    instances: Instances,
) -> None:
    store = await instances()
    assert await store.put("k", b"v", 60, ["t"], await since(store))
    assert await store.get("k") == b"v"
    assert await store.invalidate(["t"])
    assert await store.get("k") is None


async def test_copies_are_bounded_by_bytes(instances: Instances, shared_raw: Redis, prefix: str) -> None:
    store = await instances(max_bytes=100)
    gen = await since(store)
    for index in range(10):
        assert await store.put(f"k{index}", bytes(20), 60, ["t"], gen)
    await shared_raw.delete(*(entry_name(prefix, f"k{index}") for index in range(10)))
    kept = [index for index in range(10) if await store.get(f"k{index}") is not None]
    assert kept == [5, 6, 7, 8, 9]  # the most recent 100 bytes
    assert await store.put("big", bytes(26), 60, ["t"], gen)  # more than a quarter of the budget: not kept
    await shared_raw.delete(entry_name(prefix, "big"))
    assert await store.get("big") is None


async def test_tagged_store_from_url_puts_a_near_cache_in_front_of_a_single_redis_only(
    redis_cluster: RedisServer, prefix: str
) -> None:
    near = tagged_store_from_url(SHARED_REDIS_URL, prefix=prefix, near_ttl=5)
    plain = tagged_store_from_url(SHARED_REDIS_URL, prefix=prefix, near_ttl=0)
    cluster = tagged_store_from_url(f"redis+cluster://127.0.0.1:{redis_cluster.port}", prefix=prefix, near_ttl=5)
    try:
        assert isinstance(near, NearCachedStore)
        assert isinstance(plain, RedisTaggedStore)
        assert isinstance(cluster, RedisTaggedStore)
    finally:
        for store in (near, plain, cluster):
            await store.aclose()


# --- the listener's failures (a redis-server of this module's own) ----------------------------------------------


@pytest.fixture
async def own_pair(redis_server: RedisServer, prefix: str) -> AsyncIterator[tuple[NearCachedStore, NearCachedStore]]:
    redis_server.ensure_started()
    writer = await open_near(redis_server.url, prefix)
    reader = await open_near(redis_server.url, prefix)
    yield writer, reader
    await writer.aclose()
    await reader.aclose()


async def test_a_lost_subscription_turns_the_near_cache_off_until_it_is_back(
    redis_server: RedisServer, own_pair: tuple[NearCachedStore, NearCachedStore], prefix: str
) -> None:
    writer, reader = own_pair
    assert await writer.put("k", b"v", 60, ["t"], await since(writer))
    assert await reader.get("k") == b"v"
    redis_server.command(b"CLIENT KILL TYPE pubsub")  # both listeners lose their subscription
    redis_server.command(f"DEL {entry_name(prefix, 'k')}".encode())  # a change whose announcement nobody hears
    await asyncio.sleep(0.01)  # the next request comes through the event loop, which sees the closed connection
    assert await reader.get("k") is None  # not the near copy: it may have missed invalidations
    await asyncio.wait_for(reader.invalidations.subscribed.wait(), SUBSCRIBED)  # it subscribes again by itself
    assert reader.invalidations.live
    assert await writer.put("k", b"w", 60, ["t"], await since(writer))
    assert await reader.get("k") == b"w"
    assert await writer.invalidate(["t"])
    await asyncio.sleep(0)  # the next request reaches the reader as I/O: after what its listener has received
    assert await reader.get("k") is None


async def test_redis_stopped_and_restarted(
    redis_server: RedisServer, own_pair: tuple[NearCachedStore, NearCachedStore]
) -> None:
    writer, reader = own_pair
    assert await writer.put("k", b"v", 60, ["t"], await since(writer))
    assert await reader.get("k") == b"v"
    redis_server.stop()
    await asyncio.sleep(0.01)
    try:
        assert await reader.get("k") is None  # fails open, and does not answer from memory meanwhile
        assert not reader.invalidations.live
    finally:
        redis_server.start()
    await asyncio.wait_for(reader.invalidations.subscribed.wait(), SUBSCRIBED + 2)
    assert await reader.get("k") is None  # an empty Redis, and an empty near cache
    assert await writer.put("k", b"after", 60, ["t"], await since(writer))
    assert await reader.get("k") == b"after"
    assert await writer.invalidate(["t"])
    await asyncio.sleep(0)  # as above: the request after the invalidation comes through the event loop
    assert await reader.get("k") is None
