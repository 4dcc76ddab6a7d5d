"""Requests for one path go straight to its app, past Starlette's exception middleware and router.

For `/graphql`, the path of the gateway's hottest answer (a cache hit): its endpoint answers every method and
every failure itself (405, GraphQL errors with codes), so the router's matching and the exception layer's extra
`send` wrapper did nothing for it but cost each request. Placed innermost among the app's middleware, so the
layers outside (request id and metrics, security headers, CORS) still see every request; Starlette's outermost
server-error layer still turns an unexpected exception into a plain 500. Other paths, `/graphql/` included
(redirected by the router), go on as before.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send


class DirectRoute:
    def __init__(self, app: ASGIApp, *, path: str, endpoint: ASGIApp) -> None:
        self.app = app
        self.path = path
        self.endpoint = endpoint

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and _route_path(scope) == self.path:
            await self.endpoint(scope, receive, send)
        else:
            await self.app(scope, receive, send)


def _route_path(scope: Scope) -> str:
    """The path below `root_path` (when mounted under a prefix), as Starlette's router matches it."""
    path: str = scope["path"]
    root_path: str = scope.get("root_path", "")
    if root_path and path.startswith(root_path) and path[len(root_path) : len(root_path) + 1] == "/":
        return path[len(root_path) :]
    return path
