"""Batched requests (a JSON array body): off by default; when on, at most `GATEWAY_MAX_BATCH_SIZE` operations,
each run as a request of its own (principal, response cache, rate limit) and answered in order."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from integrations.store.models import Customer
from tests.conftest import ANONYMOUS, GraphQLClient, app_settings_for, serve_in_process

COUNT = {"query": "{ customers { totalCount } }"}
TYPENAME = {"query": "{ __typename }"}


def create(email: str) -> dict[str, Any]:
    return {
        "query": "mutation($input: CreateCustomerInput!) { createCustomer(input: $input) { customer { email } } }",
        "variables": {"input": {"email": email, "name": email.split("@")[0]}},
    }


@pytest.fixture
async def batching(store_url: str, tmp_path: Path) -> AsyncIterator[GraphQLClient]:
    async with serve_in_process(app_settings_for(store_url, tmp_path, GATEWAY_BATCHING=True)) as client:
        yield client


async def test_batches_are_refused_by_default_and_nothing_runs(client: GraphQLClient) -> None:
    response = await client.http.post("/graphql", json=[create("a@example.com"), COUNT])
    assert response.status_code == 400
    assert response.json() == {
        "errors": [
            {
                "message": "Batched requests are disabled: send one operation per request",
                "extensions": {"code": "BATCHING_DISABLED"},
            }
        ]
    }
    assert await client.count(Customer) == 0


async def test_a_batch_runs_in_order_and_answers_an_array(batching: GraphQLClient) -> None:
    response = await batching.http.post(
        "/graphql", json=[COUNT, create("a@example.com"), create("b@example.com"), COUNT, TYPENAME]
    )
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.headers["cache-control"] == "no-store"
    assert response.json() == [
        {"data": {"customers": {"totalCount": 0}}},
        {"data": {"createCustomer": {"customer": {"email": "a@example.com"}}}},
        {"data": {"createCustomer": {"customer": {"email": "b@example.com"}}}},
        {"data": {"customers": {"totalCount": 2}}},
        {"data": {"__typename": "Query"}},
    ]


@pytest.mark.parametrize("accept", ["application/graphql-response+json", "application/json"])
async def test_a_refused_operation_answers_in_its_place_and_the_others_run(
    batching: GraphQLClient, accept: str
) -> None:
    batch = [
        {"query": "{ nope }"},
        create("a@example.com"),
        {"query": '{ customer(id: "bad") { id } }'},
        {"query": "query A { __typename } query B { __typename }", "operationName": "C"},
        {"extensions": {"persistedQuery": {"version": 1, "sha256Hash": "0" * 64}}},
    ]
    response = await batching.http.post("/graphql", json=batch, headers={"accept": accept})
    assert response.status_code == 200
    assert response.headers["content-type"] == accept
    nope, created, field_error, unknown_operation, not_found = response.json()
    assert "data" not in nope
    assert nope["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    assert created == {"data": {"createCustomer": {"customer": {"email": "a@example.com"}}}}
    assert field_error["data"] == {"customer": None}
    assert field_error["errors"][0]["extensions"]["code"] == "INVALID_ID"
    assert unknown_operation == {
        "errors": [{"message": 'Unknown operation named "C".', "extensions": {"code": "BAD_USER_INPUT"}}]
    }
    assert not_found["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_FOUND"
    assert await batching.count(Customer) == 1


async def test_each_operation_runs_as_the_requests_principal(batching: GraphQLClient) -> None:
    batch = [COUNT, create("a@example.com")]
    anonymous = (await batching.http.post("/graphql", json=batch, headers=ANONYMOUS)).json()
    assert anonymous[0] == {"data": {"customers": {"totalCount": 0}}}  # development: anonymous may read
    assert anonymous[1]["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert anonymous[1]["errors"][0]["path"] == ["createCustomer"]
    assert await batching.count(Customer) == 0

    admin = (await batching.http.post("/graphql", json=batch)).json()
    assert admin[1] == {"data": {"createCustomer": {"customer": {"email": "a@example.com"}}}}
    assert await batching.count(Customer) == 1


async def test_batched_queries_go_through_the_response_cache(batching: GraphQLClient) -> None:
    products = {"query": "{ products(first: 1) { totalCount } }"}
    stats = batching.app.state.response_cache.stats
    first = await batching.http.post("/graphql", json=[products, products])
    assert first.json() == [{"data": {"products": {"totalCount": 0}}}] * 2
    hits = stats["hit"]
    again = await batching.http.post("/graphql", json=[products])
    assert again.json() == [{"data": {"products": {"totalCount": 0}}}]
    assert stats["hit"] == hits + 1


async def test_at_most_max_batch_size_operations(batching: GraphQLClient) -> None:
    full = await batching.http.post("/graphql", json=[TYPENAME] * 10)
    assert full.status_code == 200
    assert full.json() == [{"data": {"__typename": "Query"}}] * 10

    too_many = await batching.http.post("/graphql", json=[create("a@example.com")] + [TYPENAME] * 10)
    assert too_many.status_code == 400
    error = too_many.json()["errors"][0]
    assert error["extensions"]["code"] == "BATCH_TOO_LARGE"
    assert error["message"] == "A batch may hold at most 10 operations, not 11"
    assert await batching.count(Customer) == 0


async def test_max_batch_size_is_configurable(store_url: str, tmp_path: Path) -> None:
    settings = app_settings_for(store_url, tmp_path, GATEWAY_BATCHING=True, GATEWAY_MAX_BATCH_SIZE=2)
    async with serve_in_process(settings) as client:
        assert (await client.http.post("/graphql", json=[TYPENAME] * 2)).status_code == 200
        response = await client.http.post("/graphql", json=[TYPENAME] * 3)
        assert response.status_code == 400
        assert response.json()["errors"][0]["extensions"]["code"] == "BATCH_TOO_LARGE"


@pytest.mark.parametrize(
    ("batch", "message"),
    [
        ([], "The batch is empty"),
        ([TYPENAME, "{ __typename }"], "Operation 1 of the batch: it must be a JSON object"),
        ([create("a@example.com"), {"query": 1}], "Operation 1 of the batch: `query` must be a string"),
        ([create("a@example.com"), {}], "Operation 1 of the batch: No GraphQL query found"),
    ],
)
async def test_a_malformed_batch_is_400_and_nothing_runs(
    batching: GraphQLClient, batch: list[Any], message: str
) -> None:
    response = await batching.http.post("/graphql", json=batch)
    assert response.status_code == 400
    error = response.json()["errors"][0]
    assert error["extensions"]["code"] == "BAD_REQUEST"
    assert error["message"].startswith(message)
    assert await batching.count(Customer) == 0


async def test_each_operation_spends_the_rate_limit(store_url: str, tmp_path: Path) -> None:
    settings = app_settings_for(
        store_url, tmp_path, GATEWAY_BATCHING=True, GATEWAY_RATE_LIMIT_REQUESTS=3, GATEWAY_RATE_LIMIT_PERIOD=3600
    )
    async with serve_in_process(settings) as client:
        response = await client.http.post("/graphql", json=[TYPENAME] * 5)
        assert response.status_code == 200
        answers = response.json()
        assert answers[:3] == [{"data": {"__typename": "Query"}}] * 3
        for refused in answers[3:]:
            assert refused["errors"][0]["extensions"]["code"] == "RATE_LIMITED"
        assert response.headers["ratelimit-remaining"] == "0"
        assert "retry-after" in response.headers
