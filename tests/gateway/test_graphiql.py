"""GraphiQL page and its vendored assets: SRI, no remote URLs, security headers, static serving."""

from __future__ import annotations

import re
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route

from gateway.graphiql import (
    INTEGRITY,
    SCRIPTS,
    STATIC_DIR,
    STATIC_PREFIX,
    STYLESHEETS,
    graphiql_static_app,
    render_graphiql,
    sri_hash,
)

VENDORED = (
    "react.production.min.js",
    "react-dom.production.min.js",
    "graphiql.min.js",
    "graphiql.min.css",
    "plugin-explorer.umd.js",
    "plugin-explorer.css",
)
LICENSES = ("react", "react-dom", "graphiql", "plugin-explorer", "graphiql-explorer")


class _Tags(HTMLParser):
    """Collects start tags (with attributes) and the text inside <script>/<style> elements."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.inline: list[str] = []
        self._in: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if tag in {"script", "style"}:
            self._in = tag

    def handle_endtag(self, tag: str) -> None:
        if tag == self._in:
            self._in = None

    def handle_data(self, data: str) -> None:
        if self._in and data.strip():
            self.inline.append(data)


def _parse(body: str) -> _Tags:
    parser = _Tags()
    parser.feed(body)
    parser.close()
    return parser


def _assets(page: _Tags) -> Iterator[tuple[str, dict[str, str | None]]]:
    """(URL, attributes) of every <script src> and <link rel=stylesheet> on the page."""
    for tag, attrs in page.tags:
        if tag == "script":
            assert attrs.get("src"), "inline <script> on the page"
            yield str(attrs["src"]), attrs
        elif tag == "link" and attrs.get("rel") == "stylesheet":
            yield str(attrs["href"]), attrs


@pytest.fixture(scope="module")
def page() -> _Tags:
    return _parse(bytes(render_graphiql().body).decode())


def test_every_referenced_asset_is_packaged_with_matching_sri(page: _Tags) -> None:
    seen = []
    for url, attrs in _assets(page):
        assert url.startswith(f"{STATIC_PREFIX}/"), url
        name = url.removeprefix(f"{STATIC_PREFIX}/")
        path = STATIC_DIR / name
        assert path.is_file(), f"{url} is not in the package"
        assert attrs.get("integrity") == sri_hash(path.read_bytes()), f"SRI of {name} does not match its bytes"
        assert attrs.get("crossorigin") == "anonymous"
        seen.append(name)
    assert sorted(seen) == sorted((*STYLESHEETS, *SCRIPTS))
    assert set(INTEGRITY) == set(seen)


def test_page_references_no_other_host(page: _Tags) -> None:
    for _tag, attrs in page.tags:
        for attr in ("src", "href", "action", "data-endpoint"):
            value = attrs.get(attr)
            if value is not None:
                assert not re.match(r"^\s*([a-z][a-z0-9+.-]*:)?//", value, re.IGNORECASE), value
                assert value.startswith(("/", "data:")), value
    assert not page.inline, f"inline script/style would need a weaker CSP: {page.inline}"
    body = bytes(render_graphiql().body).decode()
    assert "http://" not in body
    assert "https://" not in body


def test_page_reads_endpoint_from_data_attribute() -> None:
    page = _parse(bytes(render_graphiql('/api/graphql?x="<y>"').body).decode())
    div = next(attrs for tag, attrs in page.tags if tag == "div" and attrs.get("id") == "graphiql")
    assert div["data-endpoint"] == '/api/graphql?x="<y>"'  # escaped in HTML, intact once parsed
    init = (STATIC_DIR / "init.js").read_text()
    assert 'getAttribute("data-endpoint")' in init
    assert "window.location.hash" in init  # #query=... prefills the editor (never sent to the server)
    assert "isHeadersEditorEnabled: true" in init
    assert "subscriptionUrl" not in init
    assert "ws:" not in init


def test_security_headers() -> None:
    headers = render_graphiql().headers
    csp = {
        directive.split()[0]: directive.split()[1:]
        for directive in (part.strip() for part in headers["content-security-policy"].split(";"))
    }
    assert csp == {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'", "'sha256-Y/huXlwoYkVyQlxwSVcCi1RCDGDCSVBzDt0hYP9qlTc='"],  # SCROLL_LOCK_CSS
        "connect-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'", "data:"],
        "object-src": ["'none'"],
        "frame-ancestors": ["'none'"],
        "base-uri": ["'none'"],
        "form-action": ["'none'"],
    }
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["referrer-policy"] == "no-referrer"
    assert headers["x-frame-options"] == "DENY"
    assert headers["content-type"] == "text/html; charset=utf-8"


def _versions_table() -> dict[str, tuple[str, str]]:
    """file -> (vendored SRI, upstream SRI or "same") from VERSIONS.md."""
    rows = {}
    for line in (STATIC_DIR / "VERSIONS.md").read_text().splitlines():
        cells = [cell.strip().strip("`") for cell in line.strip().strip("|").split("|")]
        if len(cells) == 6 and cells[3].startswith("sha384-"):
            rows[cells[0]] = (cells[3], cells[4])
    return rows


def test_versions_md_lists_every_vendored_file_with_its_sri() -> None:
    table = _versions_table()
    assert sorted(table) == sorted(VENDORED)
    for name, (vendored, upstream) in table.items():
        data = (STATIC_DIR / name).read_bytes()
        assert sri_hash(data) == vendored, f"VERSIONS.md SRI of {name} is stale"
        if upstream != "same":
            # Only the trailing sourceMappingURL comment was stripped: restoring it gives npm's bytes.
            comment = (
                f"/*# sourceMappingURL={name}.map*/" if name.endswith(".css") else f"//# sourceMappingURL={name}.map"
            )
            assert sri_hash(data + comment.encode()) == upstream, name
    for package in LICENSES:
        assert "MIT License" in (STATIC_DIR / f"LICENSE.{package}").read_text()


@pytest.mark.parametrize("name", [*STYLESHEETS, *SCRIPTS])
def test_assets_fetch_nothing_remote(name: str) -> None:
    text = (STATIC_DIR / name).read_text(encoding="utf-8")
    for match in re.finditer(r"sourceMappingURL=(\S+?)(\*/)?$", text, re.MULTILINE):
        assert (STATIC_DIR / match.group(1)).is_file(), f"{name} points at a source map that is not vendored"
    if name.endswith(".css"):
        assert "@import" not in text
        for url in re.findall(r"url\(\s*['\"]?([^'\")]*)", text):
            assert url.startswith(("data:", "#")), f"{name} loads {url}"


def _app() -> Starlette:
    async def graphiql(request: Request) -> Response:
        return render_graphiql()

    return Starlette(routes=[Route("/graphql", graphiql), Mount(STATIC_PREFIX, app=graphiql_static_app())])


async def test_served_through_starlette() -> None:
    # httpx's ASGI transport rather than starlette.testclient, which warns (an error here) without httpx2.
    transport = httpx.ASGITransport(app=_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        page = await client.get("/graphql", headers={"Accept": "text/html"})
        assert page.status_code == 200
        assert page.headers["content-type"] == "text/html; charset=utf-8"
        assert "content-security-policy" in page.headers
        for url, attrs in _assets(_parse(page.text)):
            asset = await client.get(url)
            assert asset.status_code == 200, url
            kind = asset.headers["content-type"].split(";")[0]
            if url.endswith(".js"):
                assert kind in {"text/javascript", "application/javascript"}, (url, kind)
            else:
                assert kind == "text/css", (url, kind)
            assert asset.headers["x-content-type-options"] == "nosniff"
            assert sri_hash(asset.content) == attrs["integrity"]
            etag = asset.headers["etag"]
            assert (await client.get(url, headers={"If-None-Match": etag})).status_code == 304
        assert (await client.get(f"{STATIC_PREFIX}/missing.js")).status_code == 404
        assert (await client.get(f"{STATIC_PREFIX}/%2e%2e/graphiql.py")).status_code == 404


def test_static_dir_is_inside_the_package() -> None:
    import gateway.graphiql as module

    assert Path(module.__file__).resolve().parent / "static" / "graphiql" == STATIC_DIR
    assert STATIC_DIR.is_dir()
