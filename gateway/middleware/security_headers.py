"""Fixed response headers on every answer of the app (unless the answer set them itself).

By default `X-Content-Type-Options: nosniff`, so no browser ever reads a JSON answer (which may echo client
input in error messages) as HTML or script. GraphiQL's page sets its own, stricter set (`gateway/graphiql.py`).
"""

from __future__ import annotations

from collections.abc import Mapping

from starlette.types import ASGIApp, Message, Receive, Scope, Send

DEFAULT_HEADERS: Mapping[str, str] = {"X-Content-Type-Options": "nosniff"}


class SecurityHeaders:
    def __init__(self, app: ASGIApp, *, headers: Mapping[str, str] = DEFAULT_HEADERS) -> None:
        self.app = app
        self.headers = [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in headers.items()]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                raw = list(message.get("headers", ()))
                names = [name for name, _ in raw]  # lower case, as ASGI asks (and Starlette's responses do)
                for header in self.headers:
                    if header[0] not in names:
                        raw.append(header)
                message["headers"] = raw
            await send(message)

        await self.app(scope, receive, send_with_headers)
