"""CORS for browser clients on other origins: Starlette's `CORSMiddleware` over an allowlist of origins.

Only listed origins (`GATEWAY_CORS_ORIGINS`; `*` for any) get CORS headers, and none at all when the list is
empty, so a browser keeps other sites' pages from reading answers or sending preflighted requests. Credentials
are headers (`Authorization`, `X-API-Key`) that a page sets itself, never cookies, so
`Access-Control-Allow-Credentials` is not sent. Preflights are answered before routing, for every path.
"""

from __future__ import annotations

from collections.abc import Sequence

from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware

ALLOW_METHODS = ("GET", "POST")
ALLOW_HEADERS = (
    "content-type",
    "authorization",
    "x-api-key",
    "apollo-require-preflight",
    "graphql-require-preflight",
    "x-apollo-operation-name",
)
EXPOSE_HEADERS = (
    "RateLimit-Limit",
    "RateLimit-Remaining",
    "RateLimit-Reset",
    "RateLimit-Policy",
    "Retry-After",
    "X-Cache",
    "ETag",
    "X-Request-ID",
)
MAX_AGE = 600
"""Seconds a browser may reuse a preflight (Chromium caps it at 7,200)."""


def cors_middleware(origins: Sequence[str]) -> list[Middleware]:
    """The CORS middleware for `origins` (exact `scheme://host[:port]` values, or `*`); none for an empty list."""
    if not origins:
        return []
    return [
        Middleware(
            CORSMiddleware,
            allow_origins=list(origins),
            allow_methods=ALLOW_METHODS,
            allow_headers=ALLOW_HEADERS,
            expose_headers=EXPOSE_HEADERS,
            allow_credentials=False,
            max_age=MAX_AGE,
        )
    ]
