"""Automatic persisted queries with the exact requests Apollo Client's persisted-query link sends."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.conftest import GraphQLClient, app_settings_for, serve_in_process

# What Apollo Client sends: the printed document, hashed with SHA-256; `accept: */*` and JSON bodies.
QUERY = "query Products($first: Int) {\n  products(first: $first) {\n    totalCount\n  }\n}"
HASH = hashlib.sha256(QUERY.encode()).hexdigest()
HEADERS = {"accept": "*/*", "content-type": "application/json"}
NOT_FOUND = {"errors": [{"message": "PersistedQueryNotFound", "extensions": {"code": "PERSISTED_QUERY_NOT_FOUND"}}]}


def hashed_only(digest: str = HASH) -> dict[str, Any]:
    return {
        "operationName": "Products",
        "variables": {"first": 2},
        "extensions": {"persistedQuery": {"version": 1, "sha256Hash": digest}},
    }


def with_query(query: str = QUERY, digest: str = HASH) -> dict[str, Any]:
    return {**hashed_only(digest), "query": query}


async def post(client: GraphQLClient, body: dict[str, Any]) -> Any:
    return await client.http.post("/graphql", content=orjson.dumps(body), headers=HEADERS)


async def test_the_apollo_handshake_registers_once_then_runs_by_hash(client: GraphQLClient) -> None:
    first = await post(client, hashed_only())
    assert first.status_code == 200  # Apollo Client and urql retry with the full query on this exact error
    assert first.json() == NOT_FOUND
    assert first.headers["cache-control"] == "private, no-cache, must-revalidate"

    registered = await post(client, with_query())
    assert registered.status_code == 200
    assert registered.json() == {"data": {"products": {"totalCount": 0}}}

    by_hash = await post(client, hashed_only())
    assert by_hash.json() == registered.json()

    # useGETForHashedQueries: the same hash as a short GET URL (CDN-cacheable)
    response = await client.http.get(
        "/graphql",
        params={
            "operationName": "Products",
            "variables": orjson.dumps({"first": 2}).decode(),
            "extensions": orjson.dumps({"persistedQuery": {"version": 1, "sha256Hash": HASH}}).decode(),
        },
        headers={"accept": "*/*", "content-type": "application/json"},  # as Apollo Client sends it (CSRF)
    )
    assert response.status_code == 200
    assert response.json() == registered.json()


async def test_a_hash_that_does_not_match_the_query_is_refused_and_not_stored(client: GraphQLClient) -> None:
    other = "query Products { customers { totalCount } }"
    response = await post(client, with_query(other, HASH))
    assert response.status_code == 400
    assert response.json()["errors"][0]["message"] == "provided sha does not match query"
    assert (await post(client, hashed_only())).json() == NOT_FOUND


async def test_only_documents_that_validate_are_stored(client: GraphQLClient) -> None:
    for broken in ("query Products { products { nope } }", "query Products { products {"):
        digest = hashlib.sha256(broken.encode()).hexdigest()
        response = await post(client, with_query(broken, digest))
        assert "data" not in response.json()  # a request error (HTTP 200 as application/json)
        assert (await post(client, hashed_only(digest))).json() == NOT_FOUND


@pytest.mark.parametrize(
    ("persisted", "message"),
    [
        ({"version": 2, "sha256Hash": HASH}, "Unsupported persisted query version"),
        ({"version": 1, "sha256Hash": "abc"}, "persistedQuery.sha256Hash must be 64 lower-case hex digits"),
        ({"version": 1}, "persistedQuery.sha256Hash must be 64 lower-case hex digits"),
        ("yes", "Unsupported persisted query version"),
    ],
)
async def test_malformed_persisted_query_extensions_are_bad_requests(
    client: GraphQLClient, persisted: object, message: str
) -> None:
    response = await post(client, {"extensions": {"persistedQuery": persisted}})
    assert response.status_code == 400
    assert response.json() == {"errors": [{"message": message, "extensions": {"code": "BAD_REQUEST"}}]}


async def test_apq_can_be_turned_off(store_url: str, tmp_path: Path) -> None:
    async with serve_in_process(app_settings_for(store_url, tmp_path, GATEWAY_APQ=False)) as client:
        response = await post(client, hashed_only())
        assert response.status_code == 200
        assert response.json()["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_SUPPORTED"
        plain = await client.http.post("/graphql", json={"query": QUERY, "variables": {"first": 2}})
        assert plain.json() == {"data": {"products": {"totalCount": 0}}}


@pytest.fixture
async def two_instances(
    store_url: str, tmp_path: Path, redis_url: str
) -> AsyncIterator[tuple[GraphQLClient, GraphQLClient]]:
    prefix = f"gw-test-{uuid.uuid4().hex[:12]}:"  # this run's own keys on the shared Redis
    settings = app_settings_for(store_url, tmp_path, REDIS_URL=redis_url, GATEWAY_CACHE_PREFIX=prefix)
    async with serve_in_process(settings) as one, serve_in_process(settings) as two:
        yield one, two
        redis = one.app.state.services.cache
        await redis.delete(f"apq:{HASH}")


async def test_a_query_registered_on_one_instance_runs_by_hash_on_another(
    two_instances: tuple[GraphQLClient, GraphQLClient],
) -> None:
    one, two = two_instances
    assert (await post(two, hashed_only())).json() == NOT_FOUND
    assert (await post(one, with_query())).status_code == 200
    assert (await post(two, hashed_only())).json() == {"data": {"products": {"totalCount": 0}}}
