"""GraphiQL served entirely from the package: vendored assets, Subresource Integrity and a strict CSP.

Wiring: ``Mount(STATIC_PREFIX, app=graphiql_static_app())`` and answer browser GETs of the GraphQL
endpoint with ``render_graphiql()``. The page loads nothing from another host and runs no inline script:
its bootstrap is ``init.js``, which reads the endpoint from ``data-endpoint``. Its one inline style is allowed
by hash (``SCROLL_LOCK_CSS``), not ``'unsafe-inline'``. GraphiQL sends every operation (introspection included)
as a JSON POST, which CSRF prevention lets through without a preflight header (``middleware/csrf.py``).
"""

from __future__ import annotations

import base64
import hashlib
import html
import os
from pathlib import Path
from typing import Final

from starlette.responses import HTMLResponse, Response
from starlette.staticfiles import PathLike, StaticFiles
from starlette.types import Scope

__all__ = [
    "CONTENT_SECURITY_POLICY",
    "INTEGRITY",
    "SCRIPTS",
    "SCROLL_LOCK_CSS",
    "STATIC_DIR",
    "STATIC_PREFIX",
    "STYLESHEETS",
    "csp_hash",
    "graphiql_static_app",
    "render_graphiql",
    "sri_hash",
]

STATIC_PREFIX: Final = "/static/graphiql"
"""URL path where the assets are mounted."""

STATIC_DIR: Final = Path(__file__).resolve().parent / "static" / "graphiql"
"""Directory of the vendored assets (see its VERSIONS.md)."""

STYLESHEETS: Final = ("graphiql.min.css", "plugin-explorer.css", "page.css")
SCRIPTS: Final = (
    "react.production.min.js",
    "react-dom.production.min.js",
    "graphiql.min.js",
    "plugin-explorer.umd.js",
    "init.js",
)

SCROLL_LOCK_CSS: Final = (
    "\n  .with-scroll-bars-hidden {\n   overflow: hidden !important;\n   padding-right: 0px !important;\n  }"
    "\n  body {\n    overflow: hidden !important;\n    overscroll-behavior: contain;"
    "\n    position: relative !important;"
    "\n    padding-left: 0px;\n    padding-top: 0px;\n    padding-right: 0px;\n    margin-left:0;\n    margin-top:0;"
    "\n    margin-right: 0px !important;\n    \n  }"
    "\n  \n  .right-scroll-bar-position {\n    right: 0px !important;\n  }"
    "\n  \n  .width-before-scroll-bar {\n    margin-right: 0px !important;\n  }"
    "\n  \n  .right-scroll-bar-position .right-scroll-bar-position {\n    right: 0 !important;\n  }"
    "\n  \n  .width-before-scroll-bar .width-before-scroll-bar {\n    margin-right: 0 !important;\n  }"
    "\n  \n  body {\n    --removed-body-scroll-bar-size: 0px;\n  }\n"
)
"""The one `<style>` element GraphiQL injects: react-remove-scroll-bar's `getStyles` (in graphiql.min.js), which
its dialogs and menus (Radix) add while open. It measures the page's scrollbar gap and body margins, which
page.css makes 0 (`body { margin: 0; overflow: hidden }`), so its text is always this and CSP can allow it by
hash instead of `'unsafe-inline'`. The bundle bakes its own nonce in, so a nonce cannot reach it."""


def csp_hash(text: str) -> str:
    """The CSP source expression (``'sha256-...'``) that allows an inline element whose text is ``text``."""
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode("ascii") + "'"


CONTENT_SECURITY_POLICY: Final = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        # Style attributes are set through the CSSOM (allowed); the only inline <style> is allowed by hash.
        f"style-src 'self' {csp_hash(SCROLL_LOCK_CSS)}",
        "connect-src 'self'",
        "img-src 'self' data:",
        "font-src 'self' data:",
        "object-src 'none'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
        "form-action 'none'",
    )
)

_PAGE_HEADERS: Final = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}

# Files are not content-hashed in their names, so make browsers revalidate (ETag) rather than risk a
# stale cached asset failing the page's SRI check after an upgrade.
_ASSET_HEADERS: Final = {"X-Content-Type-Options": "nosniff", "Cache-Control": "no-cache"}


def sri_hash(data: bytes) -> str:
    """Return the ``sha384-...`` Subresource Integrity value of ``data``."""
    return "sha384-" + base64.b64encode(hashlib.sha384(data).digest()).decode("ascii")


INTEGRITY: Final[dict[str, str]] = {
    name: sri_hash((STATIC_DIR / name).read_bytes()) for name in (*STYLESHEETS, *SCRIPTS)
}
"""SRI of every asset the page references, computed once from the packaged bytes."""


class _AssetFiles(StaticFiles):
    """StaticFiles that adds ``nosniff`` and a revalidating cache policy to every response."""

    def file_response(
        self,
        full_path: PathLike,
        stat_result: os.stat_result,
        scope: Scope,
        status_code: int = 200,
    ) -> Response:
        response = super().file_response(full_path, stat_result, scope, status_code)
        response.headers.update(_ASSET_HEADERS)
        return response


def graphiql_static_app() -> StaticFiles:
    """Return the ASGI app serving the vendored GraphiQL assets (mount it at ``STATIC_PREFIX``)."""
    return _AssetFiles(directory=STATIC_DIR)


def _asset_attrs(url_attr: str, name: str) -> str:
    url = html.escape(f"{STATIC_PREFIX}/{name}")
    return f'{url_attr}="{url}" integrity="{INTEGRITY[name]}" crossorigin="anonymous"'


def _page(endpoint: str) -> str:
    styles = "\n".join(f'    <link rel="stylesheet" {_asset_attrs("href", name)}>' for name in STYLESHEETS)
    scripts = "\n".join(f"    <script {_asset_attrs('src', name)}></script>" for name in SCRIPTS)
    return f"""<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8">
    <meta name="viewport" content="width=device-width, initial-scale=1">
    <title>GraphiQL</title>
    <link rel="icon" href="data:,">
{styles}
  </head>
  <body>
    <div id="graphiql" class="graphiql-container" data-endpoint="{html.escape(endpoint)}">Loading…</div>
{scripts}
  </body>
</html>
"""


def render_graphiql(endpoint: str = "/graphql") -> HTMLResponse:
    """Return the GraphiQL page for ``endpoint`` (same origin) with CSP and other security headers."""
    return HTMLResponse(_page(endpoint), headers=_PAGE_HEADERS)
