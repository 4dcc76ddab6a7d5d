"""`/healthz` (the process answers) and `/readyz` (its dependencies answer; 503 with the reasons when not)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from redis.asyncio import Redis
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.requests import Request
from starlette.responses import JSONResponse

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

    async def endpoint(_request: Request) -> JSONResponse:
        results = dict(zip(checks, await asyncio.gather(*(run(c) for c in checks.values())), strict=True))
        ready = all(result == "ok" for result in results.values())
        return JSONResponse({"status": "ok" if ready else "unavailable", "checks": results}, 200 if ready else 503)

    return endpoint
