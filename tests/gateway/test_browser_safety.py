"""Browser safety of the real app: CSRF prevention, the CORS allowlist and security headers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gateway.graphiql import STATIC_PREFIX
from tests.conftest import GraphQLClient, app_settings_for, serve_in_process

QUERY = {"query": "{ customers { totalCount } }"}
ALLOWED = "https://shop.example"
OTHER = "https://evil.example"
MODERN = "application/graphql-response+json"


@pytest.fixture
async def cors(store_url: str, tmp_path: Path) -> AsyncIterator[GraphQLClient]:
    settings = app_settings_for(store_url, tmp_path, GATEWAY_CORS_ORIGINS=f"{ALLOWED}, https://admin.shop.example")
    async with serve_in_process(settings) as client:
        yield client


# ---------------------------------------------------------------------------------------------- CSRF


async def test_a_get_without_a_preflight_header_is_refused_before_it_runs(client: GraphQLClient) -> None:
    client.sql.reset()
    response = await client.http.get("/graphql", params=QUERY)
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert "data" not in body
    [error] = body["errors"]
    assert error["extensions"] == {"code": "CSRF_PREVENTION"}
    assert "cross-site request forgery" in error["message"]
    assert "GraphQL-Require-Preflight" in error["message"]
    assert client.sql.count == 0


@pytest.mark.parametrize(
    "headers",
    [
        {"GraphQL-Require-Preflight": "1"},
        {"Apollo-Require-Preflight": "true"},
        {"X-Apollo-Operation-Name": "Count"},
        {"Content-Type": "application/json"},
        {"Content-Type": "application/graphql-response+json; charset=utf-8"},
    ],
)
async def test_a_get_a_browser_would_preflight_runs(client: GraphQLClient, headers: dict[str, str]) -> None:
    response = await client.http.get("/graphql", params=QUERY, headers=headers)
    assert response.status_code == 200, response.text
    assert response.json() == {"data": {"customers": {"totalCount": 0}}}


@pytest.mark.parametrize(
    "headers",
    [
        {"GraphQL-Require-Preflight": ""},
        {"Content-Type": "text/plain"},
        {"Content-Type": "application/x-www-form-urlencoded"},
        {"Content-Type": "multipart/form-data; boundary=x"},
        {"Accept": "text/html"},  # a navigation to /graphql?query=... (a link on another site)
        {"X-Client-Name": "partner", "Origin": OTHER},
    ],
)
async def test_a_get_any_page_could_send_is_refused(client: GraphQLClient, headers: dict[str, str]) -> None:
    response = await client.http.get("/graphql", params=QUERY, headers=headers)
    assert response.status_code == 400
    assert response.json()["errors"][0]["extensions"]["code"] == "CSRF_PREVENTION"


async def test_the_refusal_speaks_the_negotiated_media_type(client: GraphQLClient) -> None:
    response = await client.http.get("/graphql", params=QUERY, headers={"Accept": MODERN})
    assert response.status_code == 400
    assert response.headers["content-type"] == MODERN
    assert response.headers["cache-control"] == "no-store"


async def test_graphiql_page_loads_are_not_affected(client: GraphQLClient) -> None:
    page = await client.http.get("/graphql", headers={"Accept": "text/html,application/xhtml+xml"})
    assert page.status_code == 200
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    assert 'id="graphiql"' in page.text


async def test_posts_need_no_preflight_header(client: GraphQLClient) -> None:
    """A JSON POST is preflighted by the browser anyway; the simple types a form can send are refused (415)."""
    assert (await client.http.post("/graphql", json=QUERY)).status_code == 200
    form = await client.http.post("/graphql", data=QUERY)
    assert form.status_code == 415
    assert "cross-site request forgery" in form.json()["errors"][0]["message"]


async def test_csrf_prevention_can_be_turned_off(store_url: str, tmp_path: Path) -> None:
    settings = app_settings_for(store_url, tmp_path, GATEWAY_CSRF_PREVENTION=False)
    async with serve_in_process(settings) as client:
        response = await client.http.get("/graphql", params=QUERY)
        assert response.status_code == 200
        assert response.json() == {"data": {"customers": {"totalCount": 0}}}


async def test_other_paths_are_not_checked(client: GraphQLClient) -> None:
    assert (await client.http.get("/healthz", params={"query": "x"})).status_code == 200


# ---------------------------------------------------------------------------------------------- CORS


async def test_no_cors_headers_without_an_allowlist(client: GraphQLClient) -> None:
    response = await client.http.post("/graphql", json=QUERY, headers={"Origin": ALLOWED})
    assert response.status_code == 200
    assert not [name for name in response.headers if name.startswith("access-control-")]
    preflight = await client.http.options(
        "/graphql", headers={"Origin": ALLOWED, "Access-Control-Request-Method": "POST"}
    )
    assert preflight.status_code == 405
    assert "access-control-allow-origin" not in preflight.headers


async def test_a_preflight_from_an_allowed_origin_succeeds(cors: GraphQLClient) -> None:
    response = await cors.http.options(
        "/graphql",
        headers={
            "Origin": ALLOWED,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type, authorization, x-api-key, graphql-require-preflight",
        },
    )
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == ALLOWED
    assert set(response.headers["access-control-allow-methods"].split(", ")) == {"GET", "POST"}
    allowed = {name.strip().lower() for name in response.headers["access-control-allow-headers"].split(",")}
    assert {
        "content-type",
        "authorization",
        "x-api-key",
        "apollo-require-preflight",
        "graphql-require-preflight",
        "x-apollo-operation-name",
    } <= allowed
    assert "access-control-allow-credentials" not in response.headers
    assert response.headers["access-control-max-age"] == "600"
    assert "Origin" in response.headers["vary"]
    assert response.headers["x-content-type-options"] == "nosniff"


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": OTHER, "Access-Control-Request-Method": "POST"},
        {"Origin": ALLOWED, "Access-Control-Request-Method": "PUT"},
        {"Origin": ALLOWED, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "x-evil"},
    ],
)
async def test_a_preflight_outside_the_allowlist_fails(cors: GraphQLClient, headers: dict[str, str]) -> None:
    response = await cors.http.options("/graphql", headers=headers)
    assert response.status_code == 400
    assert response.headers.get("access-control-allow-origin") != OTHER


async def test_answers_to_an_allowed_origin_carry_cors_headers(cors: GraphQLClient) -> None:
    response = await cors.http.post("/graphql", json=QUERY, headers={"Origin": ALLOWED})
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == ALLOWED
    assert "Origin" in response.headers["vary"]
    exposed = {name.strip() for name in response.headers["access-control-expose-headers"].split(",")}
    assert {
        "RateLimit-Limit",
        "RateLimit-Remaining",
        "RateLimit-Reset",
        "RateLimit-Policy",
        "Retry-After",
        "X-Cache",
        "ETag",
        "X-Request-ID",
    } <= exposed


async def test_refusals_carry_cors_headers_so_the_page_can_read_them(cors: GraphQLClient) -> None:
    refused = await cors.http.get("/graphql", params=QUERY, headers={"Origin": ALLOWED})
    assert refused.status_code == 400
    assert refused.headers["access-control-allow-origin"] == ALLOWED
    assert refused.json()["errors"][0]["extensions"]["code"] == "CSRF_PREVENTION"


async def test_answers_to_another_origin_carry_no_cors_headers(cors: GraphQLClient) -> None:
    response = await cors.http.post("/graphql", json=QUERY, headers={"Origin": OTHER})
    assert response.status_code == 200  # the browser, not the server, withholds the answer from the page
    assert "access-control-allow-origin" not in response.headers


# ---------------------------------------------------------------------------------------------- headers


@pytest.mark.parametrize(
    ("method", "path", "kwargs"),
    [
        ("POST", "/graphql", {"json": QUERY}),
        ("POST", "/graphql", {"content": b"{", "headers": {"content-type": "application/json"}}),
        ("GET", "/graphql", {"params": QUERY}),
        ("PUT", "/graphql", {}),
        ("GET", "/healthz", {}),
        ("GET", "/nowhere", {}),
        ("GET", f"{STATIC_PREFIX}/init.js", {}),
    ],
)
async def test_every_answer_is_nosniff(
    client: GraphQLClient, method: str, path: str, kwargs: dict[str, object]
) -> None:
    response = await client.http.request(method, path, **kwargs)  # type: ignore[arg-type]
    assert response.headers.get_list("x-content-type-options") == ["nosniff"]


async def test_graphiql_page_security_headers_through_the_app(client: GraphQLClient) -> None:
    page = await client.http.get("/graphql", headers={"Accept": "text/html"})
    csp = {
        directive.split()[0]: directive.split()[1:]
        for directive in (part.strip() for part in page.headers["content-security-policy"].split(";"))
    }
    assert csp["default-src"] == ["'self'"]
    assert csp["script-src"] == ["'self'"]
    assert "'unsafe-inline'" not in page.headers["content-security-policy"]
    assert csp["frame-ancestors"] == ["'none'"]
    assert csp["object-src"] == ["'none'"]
    assert page.headers["x-frame-options"] == "DENY"
    assert page.headers["referrer-policy"] == "no-referrer"
    assert page.headers.get_list("x-content-type-options") == ["nosniff"]
    assert page.headers["cache-control"] == "no-store"
