"""GCRA in this process (the default without `REDIS_URL`): a dict of backlogs, bounded.

A key whose backlog has drained is the same as no key, so idle keys are dropped as soon as they reach the front
of the least-recently-written order; beyond `max_keys` the least recently written key is dropped even if its
backlog has not drained (that client's allowance is forgiven: memory stays bounded under a flood of addresses).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from typing import NamedTuple

from integrations.ratelimit.base import MICROSECONDS, Decision, Quota, gcra


class _State(NamedTuple):
    written: int
    """Microseconds (this limiter's clock)."""
    backlog: int
    expires: int
    """When the backlog has drained: the key is idle from then on."""


class MemoryRateLimiter:
    def __init__(self, *, max_keys: int = 100_000, clock: Callable[[], float] = time.monotonic) -> None:
        self._keys: OrderedDict[str, _State] = OrderedDict()
        self._max_keys = max_keys
        self._clock = clock
        self.failures = 0

    def __len__(self) -> int:
        return len(self._keys)

    async def acquire(self, key: str, quota: Quota, cost: int = 1) -> Decision | None:
        now = round(self._clock() * MICROSECONDS)
        state = self._keys.get(key)
        backlog, elapsed = (0, 0) if state is None else (state.backlog, now - state.written)
        decision, backlog = gcra(backlog, elapsed, quota, cost)
        if decision.allowed:
            self._keys[key] = _State(now, backlog, now - (-backlog // quota.limit))
            self._keys.move_to_end(key)
            self._evict(now)
        return decision

    def _evict(self, now: int) -> None:
        while self._keys:
            oldest = next(iter(self._keys.values()))
            if oldest.expires > now and len(self._keys) <= self._max_keys:
                return
            self._keys.popitem(last=False)

    async def aclose(self) -> None:
        self._keys.clear()
