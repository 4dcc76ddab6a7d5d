"""Fixed response headers on every answer of the app (unless the answer set them itself).

By default `X-Content-Type-Options: nosniff`, so no browser ever reads a JSON answer (which may echo client
input in error messages) as HTML or script. GraphiQL's page sets its own, stricter set (`gateway/graphiql.py`).
They are added by the app's outermost layer (`gateway/observability/middleware.Observe`), which wraps `send`
anyway: a layer of their own would cost every cache hit another wrapper on each message.
"""

from __future__ import annotations

from collections.abc import Mapping

DEFAULT_HEADERS: Mapping[str, str] = {"X-Content-Type-Options": "nosniff"}

RawHeaders = list[tuple[bytes, bytes]]


def encoded(headers: Mapping[str, str] = DEFAULT_HEADERS) -> RawHeaders:
    return [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in headers.items()]


def add_missing(raw: RawHeaders, fixed: RawHeaders) -> None:
    """Append each of `fixed` whose name `raw` lacks (names in lower case, as ASGI asks and Starlette sends)."""
    if not fixed:
        return
    names = [name for name, _ in raw]
    for header in fixed:
        if header[0] not in names:
            raw.append(header)
