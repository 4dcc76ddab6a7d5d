"""Redis (redis.asyncio): one pooled client, short timeouts, failing open.

A Redis that is down or slow turns reads into misses and drops writes, logged (at most once per minute) and
counted in `failures`; the client reconnects by itself when Redis is back.
"""

from __future__ import annotations

import logging
import time

from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisClusterException, RedisError

logger = logging.getLogger("integrations.cache")

TIMEOUT = 0.05
FAILURES = (RedisError, RedisClusterException, OSError)
"""What a call to Redis may raise when Redis is away; `RedisClusterException` is not a `RedisError`."""


def redis_client(url: str, *, timeout: float = TIMEOUT) -> Redis | RedisCluster:
    """A pooled client with short timeouts; `redis+cluster://` gives a Redis Cluster client."""
    if url.startswith("redis+cluster://"):
        return RedisCluster.from_url(
            "redis://" + url.removeprefix("redis+cluster://"),
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
        )
    # One immediate second attempt on a broken connection: after a Redis restart, an idle pooled connection
    # fails on first use, and without it that call would be a miss (or a dropped write, or a lost delete)
    # although Redis is up. Timeouts are not retried, so a hung Redis costs one `timeout`.
    return Redis.from_url(
        url,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        retry=Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,)),
        retry_on_error=[RedisConnectionError],
    )


def listener_client(url: str, *, connect_timeout: float = 1.0) -> Redis:
    """A client for one long-lived subscription: no read timeout (it waits for messages) and no retries (its
    listener notices a lost connection and subscribes again itself)."""
    return Redis.from_url(url, socket_connect_timeout=connect_timeout, retry=Retry(NoBackoff(), 0))


class FailingOpen:
    """What a Redis-backed store does with a failed call: count it in `failures` and warn at most once a minute."""

    failures = 0
    _last_warning = 0.0

    def _failed(self, operation: str, exc: BaseException) -> None:
        self.failures += 1
        now = time.monotonic()
        if now - self._last_warning > 60:
            self._last_warning = now
            logger.warning("cache: redis %s failed (%s); serving without the cache", operation, type(exc).__name__)


class RedisCache(FailingOpen):
    def __init__(self, client: Redis | RedisCluster, *, prefix: str = "gw:") -> None:
        self._client = client
        self._prefix = prefix

    @classmethod
    def from_url(cls, url: str, *, prefix: str = "gw:", timeout: float = TIMEOUT) -> RedisCache:
        return cls(redis_client(url, timeout=timeout), prefix=prefix)

    async def get(self, key: str) -> bytes | None:
        try:
            value = await self._client.get(self._prefix + key)
        except FAILURES as exc:
            self._failed("get", exc)
            return None
        return value if isinstance(value, bytes) else None

    async def get_many(self, keys: list[str]) -> list[bytes | None]:
        if not keys:
            return []
        try:
            names = [self._prefix + key for key in keys]
            if isinstance(self._client, RedisCluster):  # keys live in many slots: one MGET per slot
                values = await self._client.mget_nonatomic(names)
            else:
                values = await self._client.mget(names)
        except FAILURES as exc:
            self._failed("mget", exc)
            return [None] * len(keys)
        return [value if isinstance(value, bytes) else None for value in values]

    async def set(self, key: str, value: bytes, ttl: float) -> None:
        if ttl <= 0:
            return
        try:
            await self._client.set(self._prefix + key, value, px=max(1, int(ttl * 1000)))
        except FAILURES as exc:
            self._failed("set", exc)

    async def delete(self, *keys: str) -> None:
        if not keys:
            return
        try:
            await self._client.delete(*(self._prefix + key for key in keys))
        except FAILURES as exc:
            self._failed("delete", exc)

    async def aclose(self) -> None:
        await self._client.aclose()
