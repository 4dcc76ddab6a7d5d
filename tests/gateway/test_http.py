"""GraphQL over HTTP: client mistakes are clear, coded GraphQL errors with 4xx statuses; never a 500."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.conftest import GraphQLClient

JSON = {"content-type": "application/json"}


def only_error(response: Any) -> dict[str, Any]:
    body = response.json()
    assert "data" not in body, body
    assert len(body["errors"]) == 1, body
    error: dict[str, Any] = body["errors"][0]
    assert "Traceback" not in error["message"]
    return error


async def test_post_query(client: GraphQLClient) -> None:
    response = await client.post("{ customers(first: 1) { totalCount } }")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"data": {"customers": {"totalCount": 0}}}


async def test_get_query_with_variables(client: GraphQLClient) -> None:
    response = await client.http.get(
        "/graphql",
        params={"query": "query($n: Int) { products(first: $n) { totalCount } }", "variables": '{"n": 2}'},
    )
    assert response.status_code == 200
    assert response.json() == {"data": {"products": {"totalCount": 0}}}


async def test_graphql_response_media_type_when_accepted(client: GraphQLClient) -> None:
    response = await client.http.post(
        "/graphql",
        json={"query": "{ __typename }"},
        headers={"accept": "application/graphql-response+json, application/json;q=0.9"},
    )
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/graphql-response+json"


@pytest.mark.parametrize(
    ("body", "status", "code", "message"),
    [
        (b"{not json", 400, "BAD_REQUEST", "not valid JSON"),
        (b'"a string"', 400, "BAD_REQUEST", "JSON object"),
        (b"[]", 400, "BAD_REQUEST", "Batched requests are not supported"),
        (b"{}", 400, "BAD_REQUEST", "No GraphQL query"),
        (b'{"query": 42}', 400, "BAD_REQUEST", "`query` must be a string"),
        (b'{"query": "{ __typename }", "variables": [1]}', 400, "BAD_REQUEST", "`variables` must be a JSON object"),
        (b'{"query": "{ __typename", "variables": null}', 400, "GRAPHQL_PARSE_FAILED", "Syntax Error"),
        (b'{"query": "{ nope }"}', 400, "GRAPHQL_VALIDATION_FAILED", "Cannot query field 'nope'"),
        (
            b'{"query": "query A { __typename } query B { __typename }", "operationName": "C"}',
            400,
            "BAD_USER_INPUT",
            'Unknown operation named "C"',
        ),
        (
            b'{"query": "query A { __typename } query B { __typename }"}',
            400,
            "BAD_USER_INPUT",
            "operation name",
        ),
        (
            b'{"query": "query($n: Int) { customers(first: $n) { totalCount } }", "variables": {"n": "ten"}}',
            400,
            "BAD_USER_INPUT",
            "Variable '$n'",
        ),
        (
            b'{"query": "query($id: ID!) { customer(id: $id) { name } }", "variables": {}}',
            400,
            "BAD_USER_INPUT",
            "Variable '$id'",
        ),
    ],
)
async def test_bad_requests_are_coded_4xx(
    client: GraphQLClient, body: bytes, status: int, code: str, message: str
) -> None:
    response = await client.http.post("/graphql", content=body, headers=JSON)
    assert response.status_code == status, response.text
    error = only_error(response)
    assert error["extensions"]["code"] == code
    assert message.lower() in error["message"].lower()


async def test_unknown_body_keys_are_ignored(client: GraphQLClient) -> None:
    response = await client.post("{ __typename }", extra_key=1)
    assert response.status_code == 200
    assert response.json() == {"data": {"__typename": "Query"}}


async def test_unsupported_media_type(client: GraphQLClient) -> None:
    response = await client.http.post(
        "/graphql", content=b"query={__typename}", headers={"content-type": "application/x-www-form-urlencoded"}
    )
    assert response.status_code == 415
    assert only_error(response)["extensions"]["code"] == "BAD_REQUEST"


async def test_oversize_body_is_refused(client: GraphQLClient) -> None:
    huge = '{"query": "{ __typename }", "pad": "' + "x" * 200_000 + '"}'
    response = await client.http.post("/graphql", content=huge, headers=JSON)
    assert response.status_code == 413
    assert "larger than" in only_error(response)["message"]


async def test_oversize_body_without_content_length_is_refused(client: GraphQLClient) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(30):
            yield b"x" * 10_000

    response = await client.http.post("/graphql", content=chunks(), headers=JSON)
    assert response.status_code == 413


async def test_mutation_over_get_is_405(client: GraphQLClient) -> None:
    response = await client.http.get(
        "/graphql",
        params={"query": 'mutation { createCustomer(input: {email: "a@b.co", name: "A"}) { userErrors { code } } }'},
    )
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"
    # and nothing was written
    assert (await client.execute("{ customers { totalCount } }")) == {"customers": {"totalCount": 0}}


async def test_other_methods_are_405(client: GraphQLClient) -> None:
    response = await client.http.put("/graphql", json={"query": "{ __typename }"})
    assert response.status_code == 405
    assert response.headers["allow"] == "GET, POST"


async def test_nothing_acceptable_is_406(client: GraphQLClient) -> None:
    response = await client.http.post("/graphql", json={"query": "{ __typename }"}, headers={"accept": "text/csv"})
    assert response.status_code == 406


async def test_field_errors_keep_partial_data_and_a_code(client: GraphQLClient) -> None:
    response = await client.post('{ a: customer(id: "bad") { id } b: customers(first: 1) { totalCount } }')
    assert response.status_code == 200
    body = response.json()
    assert body["data"] == {"a": None, "b": {"totalCount": 0}}
    assert body["errors"][0]["path"] == ["a"]
    assert body["errors"][0]["extensions"]["code"] == "INVALID_ID"


async def test_first_beyond_100_is_a_clear_error(client: GraphQLClient) -> None:
    body = (await client.post("{ orders(first: 101) { totalCount } }")).json()
    assert body["errors"][0]["extensions"] == {"code": "PAGE_SIZE_EXCEEDED", "field": "first"}
    assert "between 0 and 100" in body["errors"][0]["message"]


async def test_healthz_and_readyz(client: GraphQLClient) -> None:
    assert (await client.http.get("/healthz")).json() == {"status": "ok"}
    response = await client.http.get("/readyz")
    assert response.status_code == 200
    assert response.json()["checks"]["database"] == "ok"


async def test_each_request_returns_its_connection_to_the_pool(client: GraphQLClient) -> None:
    pool = client.app.state.engine.sync_engine.pool
    for query in ("{ customers { totalCount } }", "{ nope }", '{ customer(id: "bad") { id } }'):
        await client.post(query)
        assert pool.checkedout() == 0
    response = await client.post(
        'mutation { createCustomer(input: {email: "x@example.com", name: "X"}) { userErrors { code } } }'
    )
    assert response.json() == {"data": {"createCustomer": {"userErrors": []}}}
    assert pool.checkedout() == 0
