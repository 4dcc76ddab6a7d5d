"""A real, scripted HTTP server on a free 127.0.0.1 port, run by uvicorn inside the test's event loop.

::

    async with ScriptedServer() as server:
        server.script(Reply(503), Reply(200, body=b'{"ok": true}'))   # then `server.default` forever
        ...  # call server.url
        assert [r.method for r in server.received] == ["GET", "GET"]

Each request takes the next scripted `Reply` (or `default` once the script is used up) and is recorded in
`received` when it arrives, before any `delay`. Delayed replies end early on `reset()` and when the server stops,
so nobody waits for a slow reply no client reads any more. Starting and stopping uvicorn costs ~0.2 s, so a test
module usually shares one server and calls `reset()` between tests.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections import deque
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from types import TracebackType

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.support.live_server import HOST, LoopbackServer


@dataclass(frozen=True)
class Reply:
    status: int = 200
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b"{}"
    delay: float = 0.0  # seconds before answering


@dataclass(frozen=True)
class Received:
    method: str
    path: str
    query: str
    headers: Mapping[str, str]  # lower-case names
    body: bytes
    client_port: int  # the client's side of the TCP connection: equal ports mean a reused connection


class ScriptedServer(LoopbackServer):
    def __init__(self) -> None:
        self.default = Reply()
        self.received: list[Received] = []
        self._script: deque[Reply] = deque()
        self._release = asyncio.Event()
        super().__init__(
            Starlette(
                routes=[Route("/{path:path}", self._handle, methods=["GET", "HEAD", "POST", "PATCH", "PUT", "DELETE"])]
            )
        )

    def script(self, *replies: Reply) -> None:
        self._script.extend(replies)

    def reset(self) -> None:
        """Forget the script, the default and what was received; end delayed replies still pending."""
        self._release.set()
        self._release = asyncio.Event()
        self._script.clear()
        self.received.clear()
        self.default = Reply()

    @property
    def open_connections(self) -> int:
        assert self._server is not None
        return len(self._server.server_state.connections)

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._release.set()
        await super().__aexit__(exc_type, exc, tb)

    async def _handle(self, request: Request) -> Response:
        body = await request.body()
        assert request.client is not None
        self.received.append(
            Received(
                method=request.method,
                path=request.url.path,
                query=request.url.query,
                headers={name.lower(): value for name, value in request.headers.items()},
                body=body,
                client_port=request.client.port,
            )
        )
        reply = self._script.popleft() if self._script else self.default
        if reply.delay:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._release.wait(), reply.delay)
        return Response(
            reply.body, status_code=reply.status, headers=dict(reply.headers), media_type="application/json"
        )


@contextlib.contextmanager
def closed_port() -> Iterator[int]:
    """A 127.0.0.1 port that refuses connections: bound (so nobody else takes it) but never listening."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        yield sock.getsockname()[1]
