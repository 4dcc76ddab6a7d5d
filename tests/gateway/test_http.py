"""GraphQL over HTTP: client mistakes are clear, coded GraphQL errors with 4xx statuses; never a 500.

Statuses follow the GraphQL-over-HTTP spec: a request that is not well-formed is a 4xx for everyone; a request
error (parse, validation, variables, operation selection: no `data`) is 400 as application/graphql-response+json
and 200 as legacy application/json.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.conftest import GraphQLClient

JSON = {"content-type": "application/json"}
PREFLIGHT = {"GraphQL-Require-Preflight": "1"}
"""What a GET needs to pass CSRF prevention (tests/gateway/test_browser_safety.py)."""
MODERN = "application/graphql-response+json"
LEGACY = "application/json"


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
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.json() == {"data": {"customers": {"totalCount": 0}}}


async def test_get_query_with_variables(client: GraphQLClient) -> None:
    response = await client.http.get(
        "/graphql",
        params={"query": "query($n: Int) { products(first: $n) { totalCount } }", "variables": '{"n": 2}'},
        headers=PREFLIGHT,
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
    ("body", "message"),
    [
        (b"{not json", "not valid JSON"),
        (b'"a string"', "JSON object"),
        (b"{}", "No GraphQL query"),
        (b'{"query": 42}', "`query` must be a string"),
        (b'{"query": "{ __typename }", "variables": [1]}', "`variables` must be a JSON object"),
        (b'{"query": "{ __typename }", "operationName": 1}', "`operationName` must be a string"),
        (b'{"query": "{ __typename }", "extensions": "x"}', "`extensions` must be a JSON object"),
        (b'{"query": "{ __typename }", "pad": "\xff"}', "not valid UTF-8"),
    ],
)
@pytest.mark.parametrize("accept", [MODERN, LEGACY, None])
async def test_malformed_requests_are_400_whatever_the_client_accepts(
    client: GraphQLClient, body: bytes, message: str, accept: str | None
) -> None:
    headers = JSON if accept is None else JSON | {"accept": accept}
    response = await client.http.post("/graphql", content=body, headers=headers)
    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == (accept or LEGACY)
    error = only_error(response)
    assert error["extensions"]["code"] == "BAD_REQUEST"
    assert message.lower() in error["message"].lower()


REQUEST_ERRORS = [
    (b'{"query": "{ __typename", "variables": null}', "GRAPHQL_PARSE_FAILED", "Syntax Error"),
    (b'{"query": "{ nope }"}', "GRAPHQL_VALIDATION_FAILED", "Cannot query field 'nope'"),
    (
        b'{"query": "query A { __typename } query B { __typename }", "operationName": "C"}',
        "BAD_USER_INPUT",
        'Unknown operation named "C"',
    ),
    (b'{"query": "query A { __typename } query B { __typename }"}', "BAD_USER_INPUT", "operation name"),
    (
        b'{"query": "query($n: Int) { customers(first: $n) { totalCount } }", "variables": {"n": "ten"}}',
        "BAD_USER_INPUT",
        "Variable '$n'",
    ),
    (
        b'{"query": "query($id: ID!) { customer(id: $id) { name } }", "variables": {}}',
        "BAD_USER_INPUT",
        "Variable '$id'",
    ),
]


@pytest.mark.parametrize(("body", "code", "message"), REQUEST_ERRORS)
async def test_request_errors_are_400_as_graphql_response_json(
    client: GraphQLClient, body: bytes, code: str, message: str
) -> None:
    response = await client.http.post("/graphql", content=body, headers=JSON | {"accept": f"{MODERN}, {LEGACY}"})
    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == MODERN
    error = only_error(response)
    assert error["extensions"]["code"] == code
    assert message.lower() in error["message"].lower()


@pytest.mark.parametrize(("body", "code", "message"), REQUEST_ERRORS)
@pytest.mark.parametrize("accept", [LEGACY, "*/*", None])
async def test_request_errors_are_200_for_legacy_json_clients(
    client: GraphQLClient, body: bytes, code: str, message: str, accept: str | None
) -> None:
    """A well-formed request answered as application/json is 200 even without `data` (the spec's legacy rule)."""
    headers = JSON if accept is None else JSON | {"accept": accept}
    response = await client.http.post("/graphql", content=body, headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == LEGACY
    assert response.headers["cache-control"] == "no-store"
    error = only_error(response)
    assert error["extensions"]["code"] == code
    assert message.lower() in error["message"].lower()


@pytest.mark.parametrize(("accept", "status"), [(MODERN, 400), (LEGACY, 200)])
async def test_request_error_of_a_get_follows_the_media_type(client: GraphQLClient, accept: str, status: int) -> None:
    response = await client.http.get("/graphql", params={"query": "{ nope }"}, headers=PREFLIGHT | {"accept": accept})
    assert response.status_code == status
    assert response.headers["content-type"] == accept
    assert only_error(response)["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"


async def test_data_with_field_errors_is_200_as_graphql_response_json(client: GraphQLClient) -> None:
    response = await client.http.post(
        "/graphql", json={"query": '{ customer(id: "bad") { id } }'}, headers={"accept": MODERN}
    )
    assert response.status_code == 200
    body = response.json()
    assert body["data"] == {"customer": None}
    assert body["errors"][0]["extensions"]["code"] == "INVALID_ID"


async def test_unknown_body_keys_are_ignored(client: GraphQLClient) -> None:
    response = await client.post("{ __typename }", extra_key=1)
    assert response.status_code == 200
    assert response.json() == {"data": {"__typename": "Query"}}


@pytest.mark.parametrize(
    ("content_type", "message"),
    [
        ("application/x-www-form-urlencoded", "without a CORS preflight"),
        ("multipart/form-data; boundary=x", "without a CORS preflight"),
        ("text/plain;charset=UTF-8", "without a CORS preflight"),
        ("application/xml", "not application/xml"),
        ("application/graphql", "not application/graphql"),
        (MODERN, "is a response type"),
        ("application/json; charset=iso-8859-1", "must be UTF-8"),
        ("application/json; charset=utf-16", "must be UTF-8"),
    ],
)
async def test_unsupported_media_types_are_415_with_the_reason(
    client: GraphQLClient, content_type: str, message: str
) -> None:
    response = await client.http.post(
        "/graphql", content=b'{"query": "{ __typename }"}', headers={"content-type": content_type}
    )
    assert response.status_code == 415
    assert response.headers["accept-post"] == "application/json; charset=utf-8"
    error = only_error(response)
    assert error["extensions"]["code"] == "BAD_REQUEST"
    assert message in error["message"]


async def test_a_post_without_content_type_is_415(client: GraphQLClient) -> None:
    response = await client.http.post("/graphql", content=b'{"query": "{ __typename }"}')
    assert response.status_code == 415
    assert "none was sent" in only_error(response)["message"]


@pytest.mark.parametrize(
    "content_type", ["application/json", "application/json; charset=utf-8", 'Application/JSON; Charset="UTF8"']
)
async def test_utf8_json_bodies_are_accepted(client: GraphQLClient, content_type: str) -> None:
    body = '{"query": "{ __typename } # café ☕", "extensions": {"note": "☕"}}'.encode()
    response = await client.http.post("/graphql", content=body, headers={"content-type": content_type})
    assert response.status_code == 200, response.text
    assert response.json() == {"data": {"__typename": "Query"}}


async def test_invalid_utf8_in_a_get_query_string_is_400(client: GraphQLClient) -> None:
    response = await client.http.get("/graphql?query=%7B%20__typename%20%7D&x=%FF", headers=PREFLIGHT)
    assert response.status_code == 400
    assert "not valid UTF-8" in only_error(response)["message"]
    ok = await client.http.get("/graphql?query=%7B%20__typename%20%7D&x=%C3%A9", headers=PREFLIGHT)
    assert ok.json() == {"data": {"__typename": "Query"}}


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


@pytest.mark.parametrize("accept", [MODERN, LEGACY])
async def test_mutation_over_get_is_405(client: GraphQLClient, accept: str) -> None:
    response = await client.http.get(
        "/graphql",
        params={"query": 'mutation { createCustomer(input: {email: "a@b.co", name: "A"}) { userErrors { code } } }'},
        headers=PREFLIGHT | {"accept": accept},
    )
    assert response.status_code == 405  # whatever the media type
    assert response.headers["allow"] == "POST"
    # and nothing was written
    assert (await client.execute("{ customers { totalCount } }")) == {"customers": {"totalCount": 0}}


@pytest.mark.parametrize("method", ["PUT", "PATCH", "DELETE", "OPTIONS"])
async def test_other_methods_are_405(client: GraphQLClient, method: str) -> None:
    response = await client.http.request(method, "/graphql", json={"query": "{ __typename }"})
    assert response.status_code == 405
    assert response.headers["allow"] == "GET, POST"
    assert only_error(response)["extensions"]["code"] == "BAD_REQUEST"


@pytest.mark.parametrize(
    ("accept", "media_type"),
    [
        (None, LEGACY),
        ("*/*", LEGACY),
        ("application/*", LEGACY),
        (f"{LEGACY};q=0.5, {MODERN}", MODERN),
        (f"{MODERN};q=0, {LEGACY}", LEGACY),
        (MODERN, MODERN),
    ],
)
async def test_response_media_type_negotiation(client: GraphQLClient, accept: str | None, media_type: str) -> None:
    headers = {} if accept is None else {"accept": accept}
    response = await client.http.post("/graphql", json={"query": "{ __typename }"}, headers=headers)
    assert response.status_code == 200
    assert response.headers["content-type"] == media_type


@pytest.mark.parametrize("accept", ["text/csv", f"{MODERN};q=0", "text/html"])
async def test_nothing_acceptable_is_406(client: GraphQLClient, accept: str) -> None:
    response = await client.http.post("/graphql", json={"query": "{ __typename }"}, headers={"accept": accept})
    assert response.status_code == 406
    assert only_error(response)["message"] == "Accept application/graphql-response+json or application/json"


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
