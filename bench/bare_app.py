"""The ceiling for a cache hit: a bare Starlette endpoint answering every POST with the same bytes from memory.

``BENCH_BARE_BODY=/path/to/body.json`` names the bytes (the gateway's own Q1 response, written by the runner).
"""

from __future__ import annotations

import os
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

BODY_ENV = "BENCH_BARE_BODY"


def create_app() -> Starlette:
    body = Path(os.environ[BODY_ENV]).read_bytes()

    async def graphql(request: Request) -> Response:
        await request.body()  # read the request as any endpoint must
        return Response(body, media_type="application/json")

    async def healthz(_request: Request) -> Response:
        return Response(b"ok")

    return Starlette(routes=[Route("/graphql", graphql, methods=["POST"]), Route("/healthz", healthz)])
