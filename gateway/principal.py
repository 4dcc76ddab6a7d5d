"""Who a request acts for, as far as caching is concerned.

Until authentication exists (the security issue), the principal is an opaque digest of the `Authorization`
header: PRIVATE responses are cached per distinct credential and never for an anonymous request.
"""

from __future__ import annotations

import hashlib

from starlette.requests import Request


def principal_of(request: Request) -> str | None:
    credential = request.headers.get("authorization")
    if not credential:
        return None
    return hashlib.sha256(credential.encode()).hexdigest()[:32]
