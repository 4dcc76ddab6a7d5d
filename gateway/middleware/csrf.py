"""CSRF prevention for GraphQL GETs (Apollo Router's model).

A page on any site can make a browser send a GET (an `<img>`, a link, a form) with the user's ambient
credentials and without asking the server first. A GraphQL GET only runs queries, but a query can still be
costly, or have effects the gateway does not know of, so a GET that carries a query string must prove a browser
would have preflighted it: it has a `Content-Type` that is not one of the "simple" types a form can send, or
a non-empty header a page cannot set without a CORS preflight (`GraphQL-Require-Preflight`,
`Apollo-Require-Preflight`, `X-Apollo-Operation-Name`). Other GETs are refused with `400 CSRF_PREVENTION`.

A GET without a query string runs nothing (GraphiQL's page is one), so it passes. POSTs are not this
middleware's business: the endpoint refuses every body but `application/json` (415), which a browser sends
cross-site only after a successful preflight.
"""

from __future__ import annotations

from collections.abc import Collection

import orjson
from starlette.datastructures import Headers
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from gateway.errors import request_error
from gateway.request import LEGACY_JSON, SIMPLE_CONTENT_TYPES, parse_media_type, response_media_type

CSRF_PREVENTION = "CSRF_PREVENTION"
REQUIRED_HEADERS = ("graphql-require-preflight", "apollo-require-preflight", "x-apollo-operation-name")
CHECKED_METHODS = ("GET", "HEAD")
MESSAGE = (
    "This request was refused as a possible cross-site request forgery (CSRF): send a non-empty "
    "`GraphQL-Require-Preflight` header (or `Apollo-Require-Preflight` or `X-Apollo-Operation-Name`, or a "
    "Content-Type other than application/x-www-form-urlencoded, multipart/form-data and text/plain), which "
    "a browser sends from another site only after a CORS preflight"
)


class CSRFPrevention:
    def __init__(self, app: ASGIApp, *, required_headers: Collection[str] = REQUIRED_HEADERS) -> None:
        self.app = app
        self.required_headers = tuple(name.lower() for name in required_headers)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] not in CHECKED_METHODS
            or not scope.get("query_string")
            or preflighted(Headers(scope=scope), self.required_headers)
        ):
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        media_type = response_media_type(headers.get("accept")) or LEGACY_JSON
        body = orjson.dumps({"errors": [request_error(MESSAGE, CSRF_PREVENTION)]})
        response = Response(body, status_code=400, headers={"Cache-Control": "no-store"}, media_type=media_type)
        await response(scope, receive, send)


def preflighted(headers: Headers, required_headers: Collection[str] = REQUIRED_HEADERS) -> bool:
    """Whether a browser would have sent a CORS preflight before a cross-site request with these headers."""
    content_type = headers.get("content-type")
    if content_type is not None and parse_media_type(content_type)[0] not in SIMPLE_CONTENT_TYPES:
        return True
    return any(headers.get(name) for name in required_headers)
