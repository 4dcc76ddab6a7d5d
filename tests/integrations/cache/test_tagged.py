"""Tagged stores: the shared behaviour against both backends (memory, and Redis on 127.0.0.1:6379 under a random
prefix), Redis key layout and TTLs, failing open against a redis-server of this module's own, and Redis Cluster."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager

import pytest
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import RedisError

from integrations.cache.tagged import TaggedStore, tagged_store_from_url
from integrations.cache.tagged.memory import MemoryTaggedStore
from integrations.cache.tagged.redis import RedisTaggedStore
from tests.support.redis_server import RedisServer
from tests.support.services import unavailable

SHARED_REDIS_URL = "redis://127.0.0.1:6379/0"
FAIL_FAST = 0.5  # seconds: a call while Redis is away must not hold a request up longer than this


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@asynccontextmanager
async def shared_redis(prefix: str) -> AsyncIterator[Redis]:
    """A plain client of the shared Redis; deletes the test's keys afterwards."""
    client = Redis.from_url(SHARED_REDIS_URL, socket_timeout=2, socket_connect_timeout=1)
    try:
        try:
            await client.ping()
        except (RedisError, OSError) as exc:
            unavailable(f"Redis not reachable at {SHARED_REDIS_URL}: {exc}")
        yield client
        keys = [key async for key in client.scan_iter(match=f"{prefix}*", count=1000)]  # this test's prefix only
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


@pytest.fixture
async def shared_raw(prefix: str) -> AsyncIterator[Redis]:
    async with shared_redis(prefix) as client:
        yield client


@pytest.fixture(params=["memory", "redis"])
async def store(request: pytest.FixtureRequest, prefix: str) -> AsyncIterator[TaggedStore]:
    async with AsyncExitStack() as stack:
        store: TaggedStore
        if request.param == "memory":
            store = MemoryTaggedStore()
        else:
            await stack.enter_async_context(shared_redis(prefix))
            store = RedisTaggedStore.from_url(SHARED_REDIS_URL, prefix=prefix)
        stack.push_async_callback(store.aclose)
        yield store
        assert store.failures == 0


@pytest.fixture
async def redis_store(shared_raw: Redis, prefix: str) -> AsyncIterator[RedisTaggedStore]:
    store = RedisTaggedStore.from_url(SHARED_REDIS_URL, prefix=prefix)
    yield store
    await store.aclose()


async def since(store: TaggedStore) -> int:
    generation = await store.generation()
    assert generation is not None
    return generation


# --- both backends --------------------------------------------------------------------------------------------


async def test_round_trip(store: TaggedStore) -> None:
    assert await store.get("k") is None
    gen = await since(store)
    assert await store.put("k", b"\x00binary\xff", 60, ["product:5", "order:*"], gen)
    assert await store.put("untagged", b"u", 60, [], gen)
    assert await store.get("k") == b"\x00binary\xff"
    assert await store.get("untagged") == b"u"
    assert await store.put("k", b"again", 60, ["product:5"], gen)  # overwrite
    assert await store.get("k") == b"again"
    assert await store.generation() == gen  # only invalidations move it


async def test_entries_expire_after_their_ttl(store: TaggedStore) -> None:
    gen = await since(store)
    assert await store.put("short", b"s", 0.05, ["t"], gen)
    assert await store.put("long", b"l", 60, ["t"], gen)
    assert not await store.put("never", b"x", 0, ["t"], gen)  # no TTL, no write
    assert await store.get("short") == b"s"
    await asyncio.sleep(0.07)
    assert await store.get("short") is None
    assert await store.get("long") == b"l"
    assert await store.get("never") is None


async def test_invalidate_deletes_exactly_the_entries_under_a_tag(store: TaggedStore) -> None:
    gen = await since(store)
    assert await store.put("a", b"a", 60, ["product:1", "order:*"], gen)
    assert await store.put("b", b"b", 60, ["product:2"], gen)
    assert await store.put("c", b"c", 60, ["product:1"], gen)
    assert await store.put("d", b"d", 60, ["order:#"], gen)

    assert await store.invalidate(["product:1"])
    assert [await store.get(key) for key in "abcd"] == [None, b"b", None, b"d"]
    assert await since(store) > gen

    assert await store.invalidate(["order:*", "product:2"])  # a is gone already; b goes now
    assert [await store.get(key) for key in "abcd"] == [None, None, None, b"d"]
    assert await store.invalidate(["never:used"])
    assert await store.invalidate([])
    assert await store.get("d") == b"d"


async def test_invalidate_deletes_thousands_of_entries_under_one_tag(store: TaggedStore) -> None:
    """More members than one Lua `unpack()` takes."""
    gen = await since(store)
    for n in range(2500):
        assert await store.put(f"k{n}", b"v", 60, ["order:*"], gen)
    assert await store.put("other", b"o", 60, ["product:1"], gen)
    assert await store.invalidate(["order:*"])
    assert [await store.get(f"k{n}") for n in (0, 999, 1000, 1999, 2000, 2499)] == [None] * 6
    assert await store.get("other") == b"o"


async def test_a_fill_that_raced_an_invalidation_stores_nothing(store: TaggedStore) -> None:
    gen = await store.generation()  # a request starts computing product 5...
    assert gen is not None
    assert await store.invalidate(["product:5"])  # ...while a mutation changes it
    assert not await store.put("p5", b"stale", 60, ["product:5"], gen)
    assert not await store.put("p5", b"stale", 60, ["other", "product:5"], gen)  # any one tag is enough
    assert await store.get("p5") is None

    assert await store.put("p6", b"fresh", 60, ["product:6"], gen)  # tags nobody touched
    assert await store.put("p5", b"fresh", 60, ["product:5"], await since(store))  # started after the change
    assert await store.get("p5") == b"fresh"
    assert not await store.put("p7", b"x", 60, ["product:7"], await since(store) + 1)  # a generation not yet given


async def test_a_tag_outlives_its_short_lived_entries_while_a_long_lived_one_remains(store: TaggedStore) -> None:
    gen = await since(store)
    assert await store.put("short", b"s", 0.05, ["t"], gen)
    assert await store.put("long", b"l", 60, ["t"], gen)
    await asyncio.sleep(0.07)
    assert await store.invalidate(["t"])
    assert await store.get("long") is None


async def test_lock(store: TaggedStore) -> None:
    async with store.lock("k", 5) as first:
        assert first
        async with store.lock("other", 5) as other:
            assert other
        if isinstance(store, RedisTaggedStore):
            async with store.lock("k", 5) as second:
                assert not second
    async with store.lock("k", 5) as again:  # released on exit
        assert again


async def test_tagged_store_from_url() -> None:
    memory = tagged_store_from_url(None)
    assert isinstance(memory, MemoryTaggedStore)
    redis = tagged_store_from_url(SHARED_REDIS_URL, prefix="x:")
    assert isinstance(redis, RedisTaggedStore)
    cluster = tagged_store_from_url("redis+cluster://127.0.0.1:1", prefix="x:")
    assert isinstance(cluster, RedisTaggedStore)
    for store in (memory, redis, cluster):  # nothing connects before the first call
        await store.aclose()


# --- memory ---------------------------------------------------------------------------------------------------


async def test_memory_is_bounded_and_evicted_entries_leave_their_tags() -> None:
    store = MemoryTaggedStore(max_entries=3)
    for key in "abcd":
        assert await store.put(key, key.encode(), 60, ["all", f"only:{key}"], 0)
    assert [await store.get(key) for key in "abcd"] == [None, b"b", b"c", b"d"]
    assert store._tags == {"all": {"b", "c", "d"}, "only:b": {"b"}, "only:c": {"c"}, "only:d": {"d"}}
    assert await store.put("b", b"b2", 60, ["new"], 0)  # re-tagged: the old tags let go of it
    assert store._tags == {"all": {"c", "d"}, "only:c": {"c"}, "only:d": {"d"}, "new": {"b"}}


async def test_memory_stamps_expire_and_are_bounded() -> None:
    clock = FakeClock()
    store = MemoryTaggedStore(max_entries=2, stamp_ttl=300, clock=clock)
    gen = await since(store)
    assert await store.invalidate(["a"])
    clock.now += 301  # a fill slower than stamp_ttl can no longer be told from a fresh one
    assert await store.put("k", b"v", 60, ["a"], gen)

    gen = await since(store)
    assert await store.invalidate(["b"])
    assert await store.invalidate(["c"])
    assert await store.invalidate(["d"])  # the stamp of b is dropped early: fills from before it are refused
    assert len(store._stamps) == 2
    assert not await store.put("k", b"v", 60, ["unrelated"], gen)
    assert await store.put("k", b"v", 60, ["unrelated"], await since(store))


async def test_memory_entries_expire_by_the_clock() -> None:
    clock = FakeClock()
    store = MemoryTaggedStore(clock=clock)
    assert await store.put("k", b"v", 1.5, ["t"], 0)
    clock.now += 1.4
    assert await store.get("k") == b"v"
    clock.now += 0.1
    assert await store.get("k") is None
    assert store._tags == {}


# --- Redis: layout ----------------------------------------------------------------------------------------------


async def test_redis_keys_share_one_slot_and_all_have_a_ttl(
    redis_store: RedisTaggedStore, shared_raw: Redis, prefix: str
) -> None:
    gen = await since(redis_store)
    assert await redis_store.put("e1", b"1", 30, ["product:1", "order:*"], gen)
    assert await redis_store.put("e2", b"2", 0.0004, ["product:2"], gen)  # below a millisecond: still expires
    assert await redis_store.invalidate(["product:3"])
    async with redis_store.lock("e1", 10) as acquired:
        assert acquired
        base = f"{prefix}{{rc}}:"
        expected = {
            f"{base}e:e1": 30_000,
            f"{base}t:product:1": 30_000,
            f"{base}t:order:*": 30_000,
            f"{base}s:product:3": 300_000,
            f"{base}gen": 86_400_000,
            f"{base}l:e1": 10_000,
        }
        for name, ttl in expected.items():
            assert ttl - 1000 < await shared_raw.pttl(name) <= ttl, name
        await asyncio.sleep(0.01)
        present = {key.decode() async for key in shared_raw.scan_iter(match=f"{prefix}*")}
        assert present == set(expected)  # e2 and its tag set have expired
    assert await shared_raw.get(f"{base}e:e1") == b"1"


async def test_redis_invalidate_deletes_more_entries_than_lua_unpacks_at_once(shared_raw: Redis, prefix: str) -> None:
    """unpack() fails above ~8,000 values; 20,000 entries (written straight into Redis, for speed) all go.

    Deleting them takes Redis tens of milliseconds on a busy machine, past the store's 50 ms default timeout
    (after which the gateway bypasses its cache until a retry succeeds): this store waits longer, since what
    is tested here is the chunking, not the timing."""
    redis_store = RedisTaggedStore.from_url(SHARED_REDIS_URL, prefix=prefix, timeout=5.0)
    base = f"{prefix}{{rc}}:"
    names = [f"{base}e:k{n}" for n in range(20_000)]
    async with shared_raw.pipeline(transaction=False) as pipe:
        for name in names:
            pipe.set(name, b"v", px=60_000)
        pipe.sadd(f"{base}t:order:*", *names)
        pipe.pexpire(f"{base}t:order:*", 60_000)
        await pipe.execute()
    assert await redis_store.invalidate(["order:*"])
    assert await shared_raw.exists(*names[:5000]) + await shared_raw.exists(*names[5000:]) == 0
    assert redis_store.failures == 0
    await redis_store.aclose()


async def test_redis_tag_set_lives_as_long_as_its_longest_lived_member(
    redis_store: RedisTaggedStore, shared_raw: Redis, prefix: str
) -> None:
    tag_set = f"{prefix}{{rc}}:t:t"
    gen = await since(redis_store)
    assert await redis_store.put("a", b"a", 10, ["t"], gen)
    assert 9_000 < await shared_raw.pttl(tag_set) <= 10_000
    assert await redis_store.put("b", b"b", 100, ["t"], gen)
    assert 99_000 < await shared_raw.pttl(tag_set) <= 100_000
    assert await redis_store.put("c", b"c", 5, ["t"], gen)  # never shortened
    assert 99_000 < await shared_raw.pttl(tag_set) <= 100_000


async def test_redis_fills_prune_expired_members_of_a_tag_set(
    redis_store: RedisTaggedStore, shared_raw: Redis, prefix: str
) -> None:
    tag_set = f"{prefix}{{rc}}:t:hot"
    gen = await since(redis_store)
    for n in range(100):
        assert await redis_store.put(f"old{n}", b"v", 0.01, ["hot"], gen)
    await asyncio.sleep(0.03)
    for n in range(100):
        assert await redis_store.put(f"new{n}", b"v", 60, ["hot"], gen)
    assert await shared_raw.scard(tag_set) < 170  # expected about 130: each fill drops the dead among two samples


async def test_redis_a_lost_generation_counter_refuses_older_fills_and_restarts_higher(
    redis_store: RedisTaggedStore, shared_raw: Redis, prefix: str
) -> None:
    gen = await since(redis_store)
    assert await redis_store.invalidate(["t"])
    assert await since(redis_store) == gen + 1
    await shared_raw.delete(f"{prefix}{{rc}}:gen", f"{prefix}{{rc}}:s:t")  # as after a restart or a quiet day
    assert not await redis_store.put("k", b"stale", 60, ["t"], gen)  # the invalidation it raced is forgotten
    assert await since(redis_store) > gen + 1
    assert not await redis_store.put("k", b"stale", 60, ["t"], gen)  # nor once the counter is back
    assert await redis_store.put("k", b"fresh", 60, ["t"], await since(redis_store))


async def test_redis_lock_expires_after_its_ttl_and_releasing_it_late_is_harmless(
    redis_store: RedisTaggedStore,
) -> None:
    async with redis_store.lock("k", 0.05) as first:
        assert first
        await asyncio.sleep(0.07)
        async with redis_store.lock("k", 5) as second:  # the first one expired: someone else may take it
            assert second
            async with redis_store.lock("k", 5) as third:
                assert not third
    async with redis_store.lock("k", 5) as fourth:  # the first's late exit did not raise nor free the second's
        assert fourth
    assert redis_store.failures == 0


# --- Redis: its own redis-server, stopped and frozen ----------------------------------------------------------


@pytest.fixture
async def own_store(redis_server: RedisServer, prefix: str) -> AsyncIterator[RedisTaggedStore]:
    store = RedisTaggedStore.from_url(redis_server.ensure_started().url, prefix=prefix, timeout=0.05)
    yield store
    await store.aclose()


async def timed(call: Awaitable[object]) -> tuple[object, float]:
    started = time.perf_counter()
    result = await call
    return result, time.perf_counter() - started


async def fails_open(store: RedisTaggedStore, gen: int) -> None:
    """Every call answers at once, as if the store were empty and read-only; the lock lets the work run."""
    calls: list[tuple[Callable[[], Awaitable[object]], object]] = [
        (store.generation, None),
        (lambda: store.get("k"), None),
        (lambda: store.put("k", b"during", 60, ["t"], gen), False),
        (lambda: store.invalidate(["t"]), False),
    ]
    for call, expected in calls:
        result, elapsed = await timed(call())
        assert (result, elapsed < FAIL_FAST) == (expected, True)
    started = time.perf_counter()
    async with store.lock("k", 5) as acquired:
        assert acquired
    assert time.perf_counter() - started < FAIL_FAST


async def test_redis_fails_open_while_stopped_and_recovers_after_a_restart(
    redis_server: RedisServer, own_store: RedisTaggedStore
) -> None:
    gen = await since(own_store)
    assert await own_store.put("k", b"before", 60, ["t"], gen)  # leaves a pooled connection, stale after the stop

    redis_server.stop()
    await fails_open(own_store, gen)
    assert own_store.failures == 5

    redis_server.start()  # the same port, empty (no persistence), no scripts loaded
    assert await own_store.get("k") is None
    assert not await own_store.put("k", b"stale", 60, ["t"], gen)  # its counter is gone: so may be stamps
    assert await own_store.put("k", b"after", 60, ["t"], await since(own_store))
    assert await own_store.get("k") == b"after"
    assert await own_store.invalidate(["t"])
    assert await own_store.get("k") is None
    assert own_store.failures == 5


async def test_redis_fails_open_within_the_timeout_when_the_server_hangs(
    redis_server: RedisServer, own_store: RedisTaggedStore
) -> None:
    gen = await since(own_store)
    assert await own_store.put("k", b"v", 60, ["t"], gen)
    redis_server.freeze()  # accepts connections (the kernel does), never answers
    try:
        await fails_open(own_store, gen)
        assert own_store.failures == 5
    finally:
        redis_server.thaw()
    # The frozen server runs what was sent to it once thawed: a call that timed out may still take effect.
    assert await own_store.put("k2", b"after", 60, ["t2"], await since(own_store))
    assert await own_store.get("k2") == b"after"
    async with own_store.lock("k2", 5) as acquired:
        assert acquired


async def test_redis_cluster(redis_cluster: RedisServer, prefix: str) -> None:
    """Scripts are routed by their first key, and every name of the store hashes to the slot of `{rc}`."""
    store = RedisTaggedStore.from_url(f"redis+cluster://127.0.0.1:{redis_cluster.port}", prefix=prefix)
    assert isinstance(store._client, RedisCluster)
    try:
        gen = await since(store)
        assert await store.put("a", b"a", 60, ["product:1"], gen)
        assert await store.put("b", b"b", 60, ["product:2"], gen)
        assert await store.get("a") == b"a"
        assert await store.invalidate(["product:1"])
        assert [await store.get("a"), await store.get("b")] == [None, b"b"]
        assert not await store.put("a", b"stale", 60, ["product:1"], gen)
        async with store.lock("a", 5) as first:
            assert first
            async with store.lock("a", 5) as second:
                assert not second
        assert store.failures == 0
    finally:
        await store.aclose()


async def test_redis_reads_in_one_event_loop_turn_share_one_mget(
    redis_server: RedisServer, own_store: RedisTaggedStore
) -> None:
    for i in range(10):
        assert await own_store.put(f"k{i}", f"v{i}".encode(), 60, ["t"], await since(own_store))
    redis_server.command(b"CONFIG RESETSTAT")

    values = await asyncio.gather(*(own_store.get(f"k{i}") for i in [*range(10), 99]))

    assert values == [f"v{i}".encode() for i in range(10)] + [None]
    stats = redis_server.command(b"INFO commandstats").decode()
    assert "cmdstat_mget:calls=1," in stats
    assert "cmdstat_get:" not in stats
