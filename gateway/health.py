"""`/healthz` (the process answers) and `/readyz` (its dependencies answer; 503 with the reasons when not).

`/readyz` also reports the circuit breaker of every upstream (third-party API) by name, read when it is asked::

    {"status": "degraded", "checks": {"database": "ok", "redis": "ok"}, "circuits": {"payments": "open"}}

A circuit that is not closed leaves the instance **ready** (200, status ``degraded``): the breaker already makes
the calls behind it fail fast with ``PAYMENT_PROVIDER_UNAVAILABLE`` while everything else answers, and every
instance sees the same upstream, so a load balancer that pulled instances out for it would take the whole graph
down with Stripe. Only the database and Redis, without which no request can be served, make it 503.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from redis.asyncio import Redis
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.requests import Request
from starlette.responses import JSONResponse

from gateway.services import upstreams
from integrations.circuit_breaker import BreakerState

CHECK_TIMEOUT_SECONDS = 2.0

Check = Callable[[], Awaitable[object]]


async def healthz(_request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


def database_check(engine: AsyncEngine) -> Check:
    async def check() -> None:
        async with engine.connect() as connection:
            await connection.execute(text("SELECT 1"))

    return check


def redis_check(client: Redis) -> Check:
    async def check() -> None:
        await client.ping()

    return check


def readyz(checks: dict[str, Check]) -> Callable[[Request], Awaitable[JSONResponse]]:
    """Run every check concurrently, each bounded by a timeout; report each by name."""

    async def run(check: Check) -> str:
        try:
            async with asyncio.timeout(CHECK_TIMEOUT_SECONDS):
                await check()
        except Exception as exc:  # any failure means "not ready"; the reason is reported
            return "unavailable: " + ("timed out" if isinstance(exc, TimeoutError) else type(exc).__name__)
        return "ok"

    async def endpoint(request: Request) -> JSONResponse:
        results = dict(zip(checks, await asyncio.gather(*(run(c) for c in checks.values())), strict=True))
        ready = all(result == "ok" for result in results.values())
        states = circuits(request)
        status = "unavailable" if not ready else "ok" if all(s == "closed" for s in states.values()) else "degraded"
        return JSONResponse({"status": status, "checks": results, "circuits": states}, 200 if ready else 503)

    return endpoint


def circuits(request: Request) -> dict[str, BreakerState]:
    """Each upstream's circuit state by name, from the services the lifespan opened (none before it has)."""
    services = getattr(request.app.state, "services", None)
    if services is None:
        return {}
    return {upstream.name: upstream.breaker.state for upstream in upstreams(services)}
