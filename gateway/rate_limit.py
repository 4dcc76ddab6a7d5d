"""The rate-limit policy: whose allowance a request spends, how much, and what the client is told.

- Users and API keys spend their principal's allowance (`Principal.identity`), wherever they come from;
  anonymous requests spend their client IP's (`client_ip.py`; IPv6 per /64, which one host typically holds).
- Every request spends 1 as soon as it is authenticated, before its body is read. With cost weighting the
  operation then spends the rest of its cost (`charge`), at most the whole allowance, so an operation that
  costs more than the limit can still run once the allowance is full.
- Answers carry `RateLimit-Limit`, `RateLimit-Remaining`, `RateLimit-Reset` and `RateLimit-Policy`
  (draft-ietf-httpapi-ratelimit-headers); a refusal is `429` with `Retry-After` and `RATE_LIMITED`.
- When the limiter cannot decide (Redis away), the request is served without the headers.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from ipaddress import IPv6Address, IPv6Network

from starlette.requests import HTTPConnection

from gateway.client_ip import ClientIP
from gateway.request import RequestError
from gateway.settings import Settings
from integrations.ratelimit import Decision, Quota, RateLimiter, rate_limiter_from_url
from resolvers.access.principal import Principal

RATE_LIMITED = "RATE_LIMITED"
IPV6_PREFIX = 64


@dataclass(frozen=True)
class Admission:
    """A request the limiter let through: the key it spends from and the headers its answer carries."""

    key: str
    headers: dict[str, str] = field(default_factory=dict)
    """Empty when the limiter could not decide (failing open)."""


class RateLimit:
    def __init__(self, limiter: RateLimiter, quota: Quota, client_ip: ClientIP, *, cost_weighted: bool = False) -> None:
        self.limiter = limiter
        self.quota = quota
        self.client_ip = client_ip
        self.cost_weighted = cost_weighted
        self.policy = f"{quota.limit};w={whole_seconds(quota.period)}"
        self.stats = {"allowed": 0, "refused": 0, "undecided": 0}

    def key(self, connection: HTTPConnection, principal: Principal) -> str:
        identity = principal.identity
        if identity is not None:
            return f"{principal.kind}:{identity}"
        address = self.client_ip(connection)
        if address is None:
            return "ip:unknown"
        if isinstance(address, IPv6Address):
            return f"ip:{IPv6Network((address, IPV6_PREFIX), strict=False).network_address}/{IPV6_PREFIX}"
        return f"ip:{address}"

    async def admit(self, connection: HTTPConnection, principal: Principal) -> Admission:
        """Spend 1 for this request, or refuse it (`RequestError` 429)."""
        key = self.key(connection, principal)
        return await self._spend(key, 1)

    async def charge(self, admission: Admission, cost: int) -> Admission:
        """With cost weighting, spend the rest of the operation's `cost` (1 was spent by `admit`); otherwise, or
        when there is nothing more to spend, the admission as it was."""
        rest = min(cost, self.quota.limit) - 1
        if not self.cost_weighted or rest < 1:
            return admission
        return await self._spend(admission.key, rest)

    async def _spend(self, key: str, cost: int) -> Admission:
        decision = await self.limiter.acquire(key, self.quota, cost)
        if decision is None:
            self.stats["undecided"] += 1
            return Admission(key)
        headers = self.headers(decision)
        if decision.allowed:
            self.stats["allowed"] += 1
            return Admission(key, headers)
        self.stats["refused"] += 1
        retry_after = whole_seconds(decision.retry_after, minimum=1)
        headers["Retry-After"] = str(retry_after)
        raise RequestError(
            429,
            f"Rate limit exceeded ({self.quota.limit} per {self.quota.period:g} s): retry after {retry_after} s",
            headers,
            code=RATE_LIMITED,
            extensions={"retryAfter": retry_after},
        )

    def headers(self, decision: Decision) -> dict[str, str]:
        return {
            "RateLimit-Limit": str(self.quota.limit),
            "RateLimit-Remaining": str(decision.remaining),
            "RateLimit-Reset": str(whole_seconds(decision.reset)),
            "RateLimit-Policy": self.policy,
        }


def whole_seconds(seconds: float, *, minimum: int = 0) -> int:
    """Rounded up (a client that waits that long is never early); headers carry whole seconds."""
    return max(minimum, math.ceil(round(seconds, 6)))


@asynccontextmanager
async def rate_limit(settings: Settings) -> AsyncIterator[RateLimit | None]:
    """The policy over its limiter (Redis when `REDIS_URL` is set), or None when rate limiting is off."""
    if not settings.rate_limit:
        yield None
        return
    limiter = rate_limiter_from_url(settings.redis_url, prefix=settings.cache_prefix)
    try:
        yield RateLimit(
            limiter,
            Quota(settings.rate_limit_requests, settings.rate_limit_period),
            ClientIP(settings.trusted_proxies),
            cost_weighted=settings.rate_limit_cost_weighted,
        )
    finally:
        await limiter.aclose()
