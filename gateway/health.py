"""`/healthz` (the process answers) and `/readyz` (its dependencies answer; 503 with the reason when not)."""

from __future__ import annotations

import asyncio

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.requests import Request
from starlette.responses import JSONResponse

READY_TIMEOUT_SECONDS = 2.0


async def healthz(_request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


def readyz(engine: AsyncEngine):  # type: ignore[no-untyped-def]
    async def endpoint(_request: Request) -> JSONResponse:
        try:
            async with asyncio.timeout(READY_TIMEOUT_SECONDS), engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
        except Exception as exc:
            reason = "timed out" if isinstance(exc, TimeoutError) else type(exc).__name__
            return JSONResponse({"status": "unavailable", "checks": {"database": f"unavailable: {reason}"}}, 503)
        return JSONResponse({"status": "ok", "checks": {"database": "ok"}})

    return endpoint
