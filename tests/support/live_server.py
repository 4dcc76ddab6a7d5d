"""Serve an ASGI app over real HTTP on 127.0.0.1 inside the test's event loop (uvicorn)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from types import TracebackType
from typing import Self

import uvicorn
from starlette.types import ASGIApp

from tests.support.ports import free_port

HOST = "127.0.0.1"


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
    async with serving(uvicorn.Config(app, host=HOST, port=port, log_level="warning", lifespan="on")):
        yield f"http://{HOST}:{port}"


class LoopbackServer:
    """Base of the tests' peers: serves `app` on 127.0.0.1 (a free port, known once entered) in the test's loop,
    quietly (no access log, no lifespan, the test process's logging left alone)."""

    def __init__(self, app: ASGIApp) -> None:
        self.port = 0
        self._server: uvicorn.Server | None = None
        self._serving: AbstractAsyncContextManager[uvicorn.Server] | None = None
        self._config = uvicorn.Config(
            app,
            host=HOST,
            port=0,
            log_level="warning",
            log_config=None,
            access_log=False,
            lifespan="off",
            ws="none",
            timeout_graceful_shutdown=2,
        )

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    async def __aenter__(self) -> Self:
        self._serving = serving(self._config)
        self._server = await self._serving.__aenter__()
        self.port = bound_port(self._server)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        assert self._serving is not None
        await self._serving.__aexit__(exc_type, exc, tb)
