"""The outermost layer: a request id and the fixed security headers on every answer, the id in every log line,
and for GraphQL requests one log line and the request metrics.

`X-Request-ID` is echoed on every response and put on every log line written while the request is served
(`request_id.current`). A GraphQL
request also gets a `Record` (`record.py`) the endpoint fills in (operation, client, error codes) while SQL and
upstream hooks count; when the answer is sent, its line is logged:

    graphql request  request_id=… method=POST path=/graphql status=200 operation=Orders client=user
                     duration_ms=3.1 cache=HIT error_codes=[]

Never a token, a variable, a query or an email: only those fields.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.middleware import security_headers
from gateway.observability import metrics
from gateway.observability.record import Record, current
from gateway.observability.request_id import HEADER, request_id
from gateway.observability.request_id import current as current_request_id

logger = structlog.stdlib.get_logger("gateway.request")
_stdlib_logger = logging.getLogger("gateway.request")
"""Asked whether INFO is on: the same answer as `logger`'s, without its lazy proxy (about 1 µs a request)."""
X_CACHE = b"x-cache"
HIT = "HIT"
DELTAS_EVERY = 1.0
"""Cache hits change none of the counts `Deltas` carries but near-cache hits: those are carried at most every
second (and at every scrape); any other request carries them at once."""


class Observe:
    def __init__(
        self,
        app: ASGIApp,
        *,
        graphql_path: str = "/graphql",
        deltas: metrics.Deltas | None = None,
        headers: Mapping[str, str] = security_headers.DEFAULT_HEADERS,
    ) -> None:
        self.app = app
        self.graphql_path = graphql_path
        self.deltas = deltas
        """Counts kept elsewhere, carried into metrics after each GraphQL request; None: metrics are off."""
        self.fixed = security_headers.encoded(headers)
        """Headers every answer carries unless it sets them (`gateway/middleware/security_headers.py`)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = request_id(scope)
        id_header = (HEADER, rid.encode("ascii"))
        token = current_request_id.set(rid)
        try:
            if scope["path"] != self.graphql_path:

                async def send_with_id(message: Message) -> None:
                    if message["type"] == "http.response.start":
                        self._add_headers(message, id_header)
                    await send(message)

                await self.app(scope, receive, send_with_id)
                return
            await self._graphql(scope, receive, send, id_header)
        finally:
            current_request_id.reset(token)

    def _add_headers(self, start: Message, id_header: tuple[bytes, bytes]) -> list[tuple[bytes, bytes]]:
        """The request id, and the fixed headers the answer lacks, onto a response start; returns its headers."""
        headers = [*start.get("headers", ()), id_header]
        security_headers.add_missing(headers, self.fixed)
        start["headers"] = headers
        return headers

    async def _graphql(self, scope: Scope, receive: Receive, send: Send, id_header: tuple[bytes, bytes]) -> None:
        record = Record()
        token = current.set(record)
        status = 500
        cache: str | None = None

        async def send_observed(message: Message) -> None:
            nonlocal status, cache
            if message["type"] == "http.response.start":
                status = message["status"]
                for name, value in self._add_headers(message, id_header):
                    if name == X_CACHE:
                        cache = value.decode("latin-1")
                        break
            await send(message)

        try:
            await self.app(scope, receive, send_observed)
        finally:
            current.reset(token)
            seconds = time.perf_counter() - record.started
            if self.deltas is not None:
                metrics.observe_request(record, status, cache, seconds)
                self.deltas.sync(every=DELTAS_EVERY if cache == HIT else 0.0)
            if _stdlib_logger.isEnabledFor(logging.INFO):  # quiet deployments (and the benchmark) build nothing
                logger.info(
                    "graphql request",
                    method=scope["method"],
                    path=scope["path"],
                    status=status,
                    operation=record.operation,
                    client=record.client,
                    duration_ms=round(seconds * 1000, 3),
                    cache=cache,
                    error_codes=record.error_codes,
                )
