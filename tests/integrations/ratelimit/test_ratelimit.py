"""GCRA rate limiters: the same behaviour in memory and in Redis (the shared Redis, a key prefix per test), then
what only Redis does: keys with a prefix and a TTL, one allowance across instances, atomic spends, and failing
open while its own redis-server is stopped or frozen."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import pytest
from redis.asyncio import Redis

from integrations.ratelimit import Quota, RateLimiter, rate_limiter_from_url
from integrations.ratelimit.memory import MemoryRateLimiter
from integrations.ratelimit.redis import RedisRateLimiter
from tests.support.redis_server import RedisServer, run_redis_server

FAIL_FAST = 0.5  # seconds: a spend while Redis is away must not hold a request up longer than this
SLACK = 0.05  # seconds: Redis's clock runs on between two calls of a test


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Backend:
    limiter: RateLimiter
    advance: Callable[[float], Awaitable[None]]
    """Let `seconds` pass: the fake clock in memory, real time for Redis."""


@pytest.fixture(params=["memory", "redis"])
async def backend(request: pytest.FixtureRequest, prefix: str) -> AsyncIterator[Backend]:
    if request.param == "memory":
        clock = FakeClock()

        async def tick(seconds: float) -> None:
            clock.now += seconds

        memory = MemoryRateLimiter(clock=clock)
        yield Backend(memory, tick)
        await memory.aclose()
        return
    redis = RedisRateLimiter.from_url(request.getfixturevalue("redis_url"), prefix=prefix, timeout=1.0)
    yield Backend(redis, asyncio.sleep)
    assert redis.failures == 0
    await redis.aclose()


async def spend(limiter: RateLimiter, key: str, quota: Quota, cost: int = 1) -> tuple[bool, int, float, float]:
    decision = await limiter.acquire(key, quota, cost)
    assert decision is not None
    return decision.allowed, decision.remaining, decision.reset, decision.retry_after


# --- both backends ------------------------------------------------------------------------------------------


async def test_a_burst_up_to_the_limit_is_allowed_then_refused_with_the_time_to_wait(backend: Backend) -> None:
    quota = Quota(5, 10.0)  # one unit every 2 s, five at once
    for remaining in (4, 3, 2, 1, 0):
        allowed, left, reset, retry_after = await spend(backend.limiter, "k", quota)
        assert (allowed, left, retry_after) == (True, remaining, 0.0)
        assert reset == pytest.approx(2.0 * (5 - remaining), abs=SLACK)

    allowed, left, reset, retry_after = await spend(backend.limiter, "k", quota)
    assert (allowed, left) == (False, 0)
    assert retry_after == pytest.approx(2.0, abs=SLACK)
    assert reset == pytest.approx(10.0, abs=SLACK)

    again = await spend(backend.limiter, "k", quota)  # a refusal spends nothing: the wait does not grow
    assert again[0] is False
    assert again[3] <= retry_after


async def test_the_allowance_refills_continuously(backend: Backend) -> None:
    quota = Quota(2, 0.4)  # one unit every 0.2 s
    assert (await spend(backend.limiter, "k", quota))[0]
    assert (await spend(backend.limiter, "k", quota))[0]
    allowed, _, _, retry_after = await spend(backend.limiter, "k", quota)
    assert not allowed
    assert 0 < retry_after <= 0.2

    await backend.advance(retry_after + 0.02)
    assert (await spend(backend.limiter, "k", quota))[:2] == (True, 0)  # one unit back, and spent
    assert not (await spend(backend.limiter, "k", quota))[0]

    await backend.advance(0.45)  # a whole period: the full burst again
    assert (await spend(backend.limiter, "k", quota))[:2] == (True, 1)
    assert (await spend(backend.limiter, "k", quota))[:2] == (True, 0)


async def test_a_cost_spends_that_many_units_and_a_refused_cost_spends_none(backend: Backend) -> None:
    quota = Quota(10, 10.0)  # one unit a second
    assert (await spend(backend.limiter, "k", quota, cost=4))[:2] == (True, 6)

    allowed, left, _, retry_after = await spend(backend.limiter, "k", quota, cost=7)
    assert (allowed, left) == (False, 6)
    assert retry_after == pytest.approx(1.0, abs=SLACK)  # one unit short

    assert (await spend(backend.limiter, "k", quota, cost=6))[:2] == (True, 0)


async def test_a_cost_above_the_limit_spends_the_whole_allowance(backend: Backend) -> None:
    quota = Quota(3, 30.0)
    allowed, left, reset, _ = await spend(backend.limiter, "k", quota, cost=1_000)
    assert (allowed, left) == (True, 0)
    assert reset == pytest.approx(30.0, abs=SLACK)
    _, _, _, retry_after = await spend(backend.limiter, "k", quota)
    assert retry_after == pytest.approx(10.0, abs=SLACK)


async def test_each_key_has_its_own_allowance(backend: Backend) -> None:
    quota = Quota(1, 60.0)
    assert (await spend(backend.limiter, "a", quota))[0]
    assert not (await spend(backend.limiter, "a", quota))[0]
    assert (await spend(backend.limiter, "b", quota))[0]


async def test_fractional_intervals_allow_exactly_the_limit(backend: Backend) -> None:
    quota = Quota(3, 1.0)  # 333,333.3 µs a unit: no rounding lets a fourth in or keeps the third out
    results = [(await spend(backend.limiter, "k", quota))[:2] for _ in range(4)]
    assert results == [(True, 2), (True, 1), (True, 0), (False, 0)]


# --- memory -----------------------------------------------------------------------------------------------------


async def test_memory_forgets_idle_keys_and_stays_bounded() -> None:
    clock = FakeClock()
    limiter = MemoryRateLimiter(max_keys=3, clock=clock)
    quota = Quota(1, 10.0)
    for key in ("a", "b", "c"):
        assert (await spend(limiter, key, quota))[0]
    assert len(limiter) == 3

    assert (await spend(limiter, "d", quota))[0]  # over the bound: the least recently written goes
    assert len(limiter) == 3
    assert (await spend(limiter, "a", quota))[0]  # forgiven: a full allowance again
    assert not (await spend(limiter, "d", quota))[0]

    clock.now += 10.0  # every backlog has drained: idle keys are dropped as soon as anything is written
    assert (await spend(limiter, "e", quota))[0]
    assert len(limiter) == 1


async def test_without_a_url_the_limiter_is_in_memory() -> None:
    limiter = rate_limiter_from_url(None, max_keys=1)
    assert isinstance(limiter, MemoryRateLimiter)
    assert limiter.failures == 0


# --- Redis --------------------------------------------------------------------------------------------------------


@pytest.fixture
async def raw(redis_url: str) -> AsyncIterator[Redis]:
    """A plain client that sees the keys as Redis stores them."""
    client = Redis.from_url(redis_url, socket_timeout=2)
    yield client
    await client.aclose()


async def test_redis_keys_carry_the_prefix_and_expire_when_the_backlog_has_drained(
    redis_url: str, prefix: str, raw: Redis
) -> None:
    limiter = rate_limiter_from_url(redis_url, prefix=prefix)
    assert isinstance(limiter, RedisRateLimiter)
    try:
        quota = Quota(4, 0.4)  # a unit every 0.1 s
        await limiter.acquire("client", quota, cost=2)
        keys = [key async for key in raw.scan_iter(match=f"{prefix}*")]
        assert keys == [f"{prefix}rl:client".encode()]
        ttl = await raw.pttl(keys[0])
        assert 0 < ttl <= 200  # two units: the time the backlog takes to drain

        refused = await limiter.acquire("client", quota, cost=3)
        assert refused is not None
        assert not refused.allowed
        assert await raw.pttl(keys[0]) <= ttl  # a refusal writes nothing

        await asyncio.sleep(0.25)
        assert await raw.exists(keys[0]) == 0  # drained: nothing left behind
    finally:
        await limiter.aclose()


async def test_redis_instances_share_one_allowance_and_spend_it_atomically(redis_url: str, prefix: str) -> None:
    one = RedisRateLimiter.from_url(redis_url, prefix=prefix, timeout=1.0)
    two = RedisRateLimiter.from_url(redis_url, prefix=prefix, timeout=1.0)
    try:
        quota = Quota(10, 60.0)
        decisions = await asyncio.gather(
            *(limiter.acquire("shared", quota) for _ in range(15) for limiter in (one, two))
        )
        assert sum(1 for d in decisions if d is not None and d.allowed) == 10
        assert sorted(d.remaining for d in decisions if d is not None and d.allowed) == list(range(10))
        refused = await two.acquire("shared", quota)
        assert refused is not None
        assert not refused.allowed
    finally:
        await one.aclose()
        await two.aclose()


async def timed(call: Awaitable[object]) -> tuple[object, float]:
    started = time.perf_counter()
    result = await call
    return result, time.perf_counter() - started


async def test_redis_fails_open_while_stopped_and_recovers_after_a_restart(
    running_redis: RedisServer, prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    limiter = RedisRateLimiter.from_url(running_redis.url, prefix=prefix)
    quota = Quota(1, 60.0)
    try:
        assert (await spend(limiter, "k", quota))[0]
        assert not (await spend(limiter, "k", quota))[0]

        running_redis.stop()
        with caplog.at_level(logging.WARNING, logger="integrations.cache"):
            for _ in range(3):
                decision, elapsed = await timed(limiter.acquire("k", quota))
                assert decision is None  # undecided: the caller serves the request
                assert elapsed < FAIL_FAST
        assert limiter.failures == 3
        assert len([r for r in caplog.records if "rate limit" in r.getMessage()]) == 1  # once, not per request

        running_redis.start()  # empty, and without the script: it is loaded again
        assert (await spend(limiter, "k", quota))[0]
        assert not (await spend(limiter, "k", quota))[0]
        assert limiter.failures == 3
    finally:
        await limiter.aclose()


async def test_redis_fails_open_within_the_timeout_when_the_server_hangs(
    running_redis: RedisServer, prefix: str
) -> None:
    limiter = RedisRateLimiter.from_url(running_redis.url, prefix=prefix, timeout=0.05)
    try:
        assert await limiter.acquire("k", Quota(1, 60.0)) is not None
        running_redis.freeze()  # accepts connections (the kernel does), never answers
        try:
            decision, elapsed = await timed(limiter.acquire("k", Quota(1, 60.0)))
            assert decision is None
            assert elapsed < FAIL_FAST
        finally:
            running_redis.thaw()
    finally:
        await limiter.aclose()


async def test_redis_cluster_limits_too(tmp_path_factory: pytest.TempPathFactory, prefix: str) -> None:
    with run_redis_server(cluster_dir=tmp_path_factory.mktemp("redis-cluster")) as cluster:
        limiter = rate_limiter_from_url(cluster.url.replace("redis://", "redis+cluster://"), prefix=prefix)
        try:
            quota = Quota(2, 60.0)
            results = [(await spend(limiter, key, quota))[0] for key in ("a", "a", "a", "b")]
            assert results == [True, True, False, True]
            assert limiter.failures == 0
        finally:
            await limiter.aclose()
