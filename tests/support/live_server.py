"""Serve an ASGI app over real HTTP on 127.0.0.1 inside the test's event loop (uvicorn)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import uvicorn
from starlette.types import ASGIApp

from tests.support.ports import free_port


@asynccontextmanager
async def serving(config: uvicorn.Config) -> AsyncIterator[uvicorn.Server]:
    """Yield the uvicorn server of `config` once it has started (its port bound: port 0 takes a free one), and stop
    it when the block ends. A start-up failure is raised here."""
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:
            if task.done():
                task.result()  # start-up failed: raise why
                raise RuntimeError("uvicorn stopped before it started")
            await asyncio.sleep(0.005)
        yield server
    finally:
        server.should_exit = True
        await task


def bound_port(server: uvicorn.Server) -> int:
    """The port a started server listens on."""
    return int(server.servers[0].sockets[0].getsockname()[1])


@asynccontextmanager
async def live_server(app: ASGIApp) -> AsyncIterator[str]:
    """Yield the base URL while uvicorn serves `app` (its lifespan included)."""
    port = free_port()
    async with serving(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")):
        yield f"http://127.0.0.1:{port}"
