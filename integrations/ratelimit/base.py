"""Rate limiting with GCRA (the generic cell rate algorithm); backends are chosen by URL.

A quota allows `limit` units per `period` seconds, all of them at once (a burst) or spread out: each unit
spent pushes a key's *theoretical arrival time* (TAT) `period / limit` seconds further, and a spend is allowed
while the TAT stays within `period` of now. One number per key, refilled continuously, no timers.

The arithmetic is in integers, scaled by `limit` so that nothing is rounded: a unit costs `period` (in
microseconds) and every microsecond that passes pays back `limit`. A key's state is its backlog (TAT - now,
scaled) at the time it was written; a key without state is a full allowance, so state lives exactly as long as
its backlog (TTL) and an expired key needs no clean-up.

Like the cache, backends fail open: `acquire` answers None when the store cannot decide (Redis down or slow),
and the caller serves the request.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

MICROSECONDS = 1_000_000


@dataclass(frozen=True)
class Quota:
    limit: int
    """Units (requests, or cost) per period; also the largest burst."""
    period: float
    """Seconds."""

    def __post_init__(self) -> None:
        if self.limit < 1 or self.period <= 0:
            raise ValueError("a quota needs limit >= 1 and period > 0")

    @property
    def period_us(self) -> int:
        return max(1, round(self.period * MICROSECONDS))

    def units(self, cost: int) -> int:
        """What `cost` spends: at least 1, at most the whole allowance (more could never be allowed)."""
        return min(max(1, cost), self.limit)


@dataclass(frozen=True)
class Decision:
    allowed: bool
    remaining: int
    """Units left after this spend (or, refused, left now)."""
    reset: float
    """Seconds until the whole allowance is available again."""
    retry_after: float
    """Seconds until the refused spend would be allowed; 0 when allowed."""


class RateLimiter(Protocol):
    failures: int
    """Failed calls to the backing service (always 0 in memory)."""

    async def acquire(self, key: str, quota: Quota, cost: int = 1) -> Decision | None:
        """Spend `quota.units(cost)` of `key`'s allowance if it holds that many, atomically; a refused spend
        changes nothing. None when the store is unavailable (fail open: serve)."""
        ...

    async def aclose(self) -> None: ...


def gcra(backlog: int, elapsed: int, quota: Quota, cost: int) -> tuple[Decision, int]:
    """One spend: the decision and the backlog to keep, from the backlog written `elapsed` microseconds ago.
    The Lua script in `redis.py` takes the same steps."""
    period, limit = quota.period_us, quota.limit
    capacity = period * limit
    current = max(0, backlog - max(0, elapsed) * limit)
    after = current + period * quota.units(cost)
    if after > capacity:
        retry_after = seconds(_ceil_div(after - capacity, limit))
        return Decision(False, (capacity - current) // period, seconds(_ceil_div(current, limit)), retry_after), current
    return Decision(True, (capacity - after) // period, seconds(_ceil_div(after, limit)), 0.0), after


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def seconds(microseconds: int) -> float:
    return microseconds / MICROSECONDS


def rate_limiter_from_url(url: str | None, *, prefix: str = "gw:", max_keys: int = 100_000) -> RateLimiter:
    """`redis://`, `rediss://`, `unix://` or `redis+cluster://` → Redis, shared by every instance; None → this
    process only (bounded to `max_keys` keys)."""
    if not url:
        from integrations.ratelimit.memory import MemoryRateLimiter

        return MemoryRateLimiter(max_keys=max_keys)
    from integrations.ratelimit.redis import RedisRateLimiter

    return RedisRateLimiter.from_url(url, prefix=prefix)
