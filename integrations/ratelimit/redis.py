"""GCRA in Redis: one Lua script per spend (atomic, so every instance shares one allowance), failing open.

Keys are `{prefix}rl:{key}`, each holding `"<written µs> <scaled backlog>"` (see `base.py`) with a TTL of the
time its backlog takes to drain. Time comes from Redis (`TIME`), so the instances' clocks do not matter. A Redis
that is down or slow allows the request (`acquire` answers None), warns at most once a minute and counts the
failure, like the cache.
"""

from __future__ import annotations

from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster

from integrations.cache.redis import FAILURES, TIMEOUT, FailingOpen, redis_client
from integrations.ratelimit.base import Decision, Quota, seconds

ACQUIRE = """
-- KEYS: the key; ARGV: period (us), limit, units to spend
-- Answers {allowed, remaining, reset (us), retry after (us)}.
local period, limit, units = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000000 + tonumber(time[2])
local current = 0
local state = redis.call('GET', KEYS[1])
if state then
  local written, backlog = string.match(state, '^(%S+) (%S+)$')
  if written and backlog then
    local elapsed = math.max(0, now - tonumber(written))
    current = math.max(0, tonumber(backlog) - elapsed * limit)
  end
end
local capacity = period * limit
local after = current + period * units
if after > capacity then
  return {0, math.floor((capacity - current) / period), math.ceil(current / limit),
          math.ceil((after - capacity) / limit)}
end
local drained = math.ceil(after / limit)
redis.call('SET', KEYS[1], string.format('%.0f %.0f', now, after), 'PX', math.max(1, math.ceil(drained / 1000)))
return {1, math.floor((capacity - after) / period), drained, 0}
"""


class RedisRateLimiter(FailingOpen):
    def __init__(self, client: Redis | RedisCluster, *, prefix: str = "gw:") -> None:
        self._client = client
        self._prefix = prefix + "rl:"
        self._acquire = client.register_script(ACQUIRE)

    @classmethod
    def from_url(cls, url: str, *, prefix: str = "gw:", timeout: float = TIMEOUT) -> RedisRateLimiter:
        return cls(redis_client(url, timeout=timeout), prefix=prefix)

    async def acquire(self, key: str, quota: Quota, cost: int = 1) -> Decision | None:
        try:
            reply = await self._acquire(
                keys=[self._prefix + key], args=[quota.period_us, quota.limit, quota.units(cost)]
            )
        except FAILURES as exc:
            self._failed("rate limit", exc)
            return None
        allowed, remaining, reset_us, retry_us = (int(value) for value in reply)
        return Decision(bool(allowed), remaining, seconds(reset_us), seconds(retry_us))

    async def aclose(self) -> None:
        await self._client.aclose()
