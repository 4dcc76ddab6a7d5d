"""The tagged store in Redis: every key in one hash slot, every multi-key step one Lua script, failing open.

Keys (all with a TTL, all carrying the hash tag `{rc}` so that Redis Cluster keeps them on one node and the
scripts may touch them together):

    {prefix}{rc}:e:{key}   an entry (its TTL)
    {prefix}{rc}:t:{tag}   the set of entry names indexed under a tag (as long as its longest-lived member)
    {prefix}{rc}:s:{tag}   the generation at which the tag was last invalidated (`stamp_ttl`)
    {prefix}{rc}:gen       the generation counter `n`, and `floor`, its first value (one day, refreshed by every
                           invalidation)
    {prefix}{rc}:l:{key}   a stampede lock (its TTL)
    {prefix}{rc}:inv       the channel every invalidation is published on, with its generation (near.py)

The counter starts at the server's clock in microseconds, not at 0, and remembers where it started: when it is
lost (a restart, a day without invalidations) it restarts above every value handed out before, and a fill that
started before (`since` below the floor) is refused, since the stamps it should be checked against may be gone.
A tag set outlives expired members while fills keep extending it; each fill drops the dead among two random
members, so the dead stay a bounded share of the set without a scan.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Collection, Sequence
from contextlib import asynccontextmanager

from aiodataloader import DataLoader
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.commands.core import AsyncScript
from redis.exceptions import LockError
from redis.typing import EncodableT

from integrations.cache.redis import FAILURES, TIMEOUT, FailingOpen, redis_client

GENERATION_TTL_MS = 86_400_000
MAX_READ_BATCH = 64
CHUNK = 1000  # members per DEL: Lua's unpack() has a stack limit

_GENERATION = """
local function generation(key, ttl)
  local gen = redis.call('HGET', key, 'n')
  if not gen then
    local now = redis.call('TIME')
    gen = now[1] .. string.format('%06d', now[2])
    redis.call('HSET', key, 'n', gen, 'floor', gen)
    redis.call('PEXPIRE', key, ttl)
  end
  return gen
end
"""

GENERATION = (
    _GENERATION
    + """
-- KEYS: counter; ARGV: counter TTL (ms)
return generation(KEYS[1], ARGV[1])
"""
)

PUT = """
-- KEYS: entry, counter; ARGV: base, value, TTL (ms), since, tags...
local base, since, ttl = ARGV[1], tonumber(ARGV[4]), tonumber(ARGV[3])
local counter = redis.call('HMGET', KEYS[2], 'n', 'floor')
if not counter[1] or since < tonumber(counter[2]) or since > tonumber(counter[1]) then return 0 end
for i = 5, #ARGV do
  local stamp = redis.call('GET', base .. 's:' .. ARGV[i])
  if stamp and tonumber(stamp) > since then return 0 end
end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ttl)
for i = 5, #ARGV do
  local set = base .. 't:' .. ARGV[i]
  for _, member in ipairs(redis.call('SRANDMEMBER', set, 2)) do
    if redis.call('EXISTS', member) == 0 then redis.call('SREM', set, member) end
  end
  redis.call('SADD', set, KEYS[1])
  if redis.call('PTTL', set) < ttl then redis.call('PEXPIRE', set, ttl) end
end
return 1
"""

INVALIDATE = (
    _GENERATION
    + f"""
-- KEYS: counter; ARGV: base, stamp TTL (ms), counter TTL (ms), tags...
local base = ARGV[1]
generation(KEYS[1], ARGV[3])
local gen = string.format('%d', redis.call('HINCRBY', KEYS[1], 'n', 1))
redis.call('PEXPIRE', KEYS[1], ARGV[3])
for i = 4, #ARGV do
  local set = base .. 't:' .. ARGV[i]
  local members = redis.call('SMEMBERS', set)
  for j = 1, #members, {CHUNK} do
    redis.call('DEL', unpack(members, j, math.min(j + {CHUNK - 1}, #members)))
  end
  redis.call('DEL', set)
  redis.call('SET', base .. 's:' .. ARGV[i], gen, 'PX', ARGV[2])
end
redis.call('PUBLISH', base .. 'inv', gen)  -- near caches (near.py) drop their copies
return gen
"""
)


class RedisTaggedStore(FailingOpen):
    def __init__(self, client: Redis | RedisCluster, *, prefix: str = "gw:", stamp_ttl: float = 300.0) -> None:
        self._client = client
        self._base = f"{prefix}{{rc}}:"
        self.channel = self._base + "inv"
        """Where every invalidation is announced (its generation), for near caches."""
        self._stamp_ms = _ms(stamp_ttl)
        self._generation = client.register_script(GENERATION)
        self._put = client.register_script(PUT)
        self._invalidate = client.register_script(INVALIDATE)
        self._reads: DataLoader[str, bytes | None] | None = None

    @classmethod
    def from_url(cls, url: str, *, prefix: str = "gw:", timeout: float = TIMEOUT) -> RedisTaggedStore:
        return cls(redis_client(url, timeout=timeout), prefix=prefix)

    async def generation(self) -> int | None:
        return await self._run("generation", self._generation, [self._base + "gen"], [GENERATION_TTL_MS])

    async def get(self, key: str) -> bytes | None:
        """Reads issued in the same event-loop turn share one MGET (auto-pipelining): under load, a cache hit
        costs a fraction of a Redis round trip in the client, which is most of what a hit costs."""
        loop = asyncio.get_running_loop()
        if self._reads is None or self._reads.loop is not loop:
            self._reads = DataLoader(self._get_many, cache=False, max_batch_size=MAX_READ_BATCH, loop=loop)
        return await self._reads.load(self._base + "e:" + key)

    async def _get_many(self, names: Sequence[str]) -> list[bytes | None]:
        try:
            if isinstance(self._client, RedisCluster):  # one slot ({rc}), but the cluster client wants this form
                values = await self._client.mget_nonatomic(list(names))
            else:
                values = await self._client.mget(list(names))
        except FAILURES as exc:
            self._failed("get", exc)
            return [None] * len(names)
        return [value if isinstance(value, bytes) else None for value in values]

    async def put(self, key: str, value: bytes, ttl: float, tags: Collection[str], since: int) -> bool:
        if ttl <= 0:
            return False
        keys = [self._base + "e:" + key, self._base + "gen"]
        result = await self._run("put", self._put, keys, [self._base, value, _ms(ttl), since, *tags])
        return result == 1

    async def invalidate(self, tags: Collection[str]) -> bool:
        return await self.invalidate_at(tags) is not None

    async def invalidate_at(self, tags: Collection[str]) -> int | None:
        """`invalidate`, answering the generation it was given (announced with it), or None when Redis failed;
        0 when there was nothing to invalidate."""
        if not tags:
            return 0
        args: list[EncodableT] = [self._base, self._stamp_ms, GENERATION_TTL_MS, *tags]
        return await self._run("invalidate", self._invalidate, [self._base + "gen"], args)

    @asynccontextmanager
    async def lock(self, key: str, ttl: float) -> AsyncIterator[bool]:
        lock = self._client.lock(self._base + "l:" + key, timeout=_ms(ttl) / 1000, blocking=False, thread_local=False)
        try:
            acquired: bool | None = bool(await lock.acquire())
        except FAILURES as exc:
            self._failed("lock", exc)
            acquired = None
        if acquired is None:  # Redis cannot tell: run the work
            yield True
            return
        try:
            yield acquired
        finally:
            if acquired:
                try:
                    await lock.release()
                except LockError:  # expired, perhaps taken by someone else since: theirs now
                    pass
                except FAILURES as exc:
                    self._failed("unlock", exc)

    async def aclose(self) -> None:
        await self._client.aclose()

    async def _run(
        self, operation: str, script: AsyncScript, keys: Sequence[str], args: Sequence[EncodableT]
    ) -> int | None:
        """Every script answers an integer (or its digits); None when Redis failed."""
        try:
            return int(await script(keys=keys, args=args))
        except FAILURES as exc:
            self._failed(operation, exc)
            return None


def _ms(seconds: float) -> int:
    """Whole milliseconds, at least one: a TTL that rounds to 0 would be an error, or no expiry at all."""
    return max(1, int(seconds * 1000))
