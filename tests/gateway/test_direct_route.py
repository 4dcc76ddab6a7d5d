"""DirectRoute sends one path straight to its endpoint and everything else through the app it wraps."""

from __future__ import annotations

import httpx
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Mount, Route
from starlette.types import Receive, Scope, Send

from gateway.middleware.direct_route import DirectRoute


async def direct(scope: Scope, receive: Receive, send: Send) -> None:
    await PlainTextResponse(f"direct {scope['method']}")(scope, receive, send)


async def routed(_request: Request) -> PlainTextResponse:
    return PlainTextResponse("routed")


def app() -> Starlette:
    return Starlette(
        routes=[Route("/graphql", routed, methods=["GET"]), Route("/other", routed)],
        middleware=[Middleware(DirectRoute, path="/graphql", endpoint=direct)],
    )


async def test_the_path_goes_to_the_endpoint_whatever_the_method_and_the_rest_to_the_router() -> None:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app()), base_url="http://test") as http:
        post = await http.post("/graphql")
        trace = await http.request("TRACE", "/graphql")
        other = await http.get("/other")
        slash = await http.get("/graphql/", follow_redirects=False)

    assert (post.status_code, post.text) == (200, "direct POST")
    assert trace.text == "direct TRACE"  # the endpoint answers methods itself, not the router's 405
    assert other.text == "routed"
    assert slash.status_code == 307  # the router's trailing-slash redirect still applies


async def test_a_mounted_app_matches_below_its_root_path() -> None:
    outer = Starlette(routes=[Mount("/api", app=app())])
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=outer), base_url="http://test") as http:
        mounted = await http.post("/api/graphql")
        elsewhere = await http.post("/graphql")

    assert mounted.text == "direct POST"
    assert elsewhere.status_code == 404
