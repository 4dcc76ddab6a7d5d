"""Repeated documents skip parsing and validation: one bounded cache shared by plain requests and APQ."""

from __future__ import annotations

import hashlib
from pathlib import Path

from graphql import build_schema as build_sdl_schema

from gateway.documents import Documents
from schema import build_schema
from tests.conftest import GraphQLClient, app_settings_for, serve_in_process


async def test_repeated_operation_is_parsed_and_validated_once(client: GraphQLClient) -> None:
    documents: Documents = client.app.state.documents
    query = "query RepeatMe { customers(first: 3) { totalCount } }"

    await client.execute(query)
    misses, hits = documents.misses, documents.hits
    for _ in range(3):
        await client.execute(query)

    assert documents.misses == misses
    assert documents.hits >= hits + 3


async def test_apq_and_plain_requests_share_one_prepared_document(client: GraphQLClient) -> None:
    documents: Documents = client.app.state.documents
    query = "query Shared { products(first: 2) { totalCount } }"
    digest = hashlib.sha256(query.encode()).hexdigest()

    await client.execute(query)
    misses = documents.misses
    apq = {"persistedQuery": {"version": 1, "sha256Hash": digest}}
    response = await client.post(query, extensions=apq)  # registers the hash
    assert response.status_code == 200, response.text
    response = await client.http.post("/graphql", json={"extensions": apq})
    assert response.status_code == 200, response.text
    assert response.json()["data"]["products"]["totalCount"] >= 0

    assert documents.misses == misses


def test_the_cache_is_bounded_and_keeps_the_recently_used() -> None:
    documents = Documents(build_schema()._schema, max_entries=2)
    first, second, third = (f"query Q{i} {{ products {{ totalCount }} }}" for i in range(3))
    documents.get(first)
    documents.get(second)
    documents.get(first)  # now the most recent
    documents.get(third)  # evicts `second`

    assert len(documents) == 2
    misses = documents.misses
    documents.get(first)
    assert documents.misses == misses
    documents.get(second)
    assert documents.misses == misses + 1


def test_normalised_digest_ignores_formatting_and_comments() -> None:
    documents = Documents(build_schema()._schema)
    compact = documents.get("query A{products{totalCount}}")
    spaced = documents.get("# a comment\nquery A {\n  products {\n    totalCount\n  }\n}\n")
    other = documents.get("query A { customers { totalCount } }")

    assert compact.digest == spaced.digest
    assert compact.digest != other.digest


def test_invalid_documents_are_remembered_with_their_errors() -> None:
    documents = Documents(build_sdl_schema("type Query { a: Int }"))
    syntax = documents.get("query {")
    invalid = documents.get("{ b }")
    valid = documents.get("{ a }")

    assert syntax.node is None
    assert not syntax.valid
    assert invalid.node is not None
    assert invalid.errors
    assert not invalid.valid
    assert valid.valid
    assert valid.operation(None) is not None
    assert valid.operation("Other") is None


def test_operation_selection_follows_the_spec() -> None:
    documents = Documents(build_sdl_schema("type Query { a: Int }"))
    two = documents.get("query One { a } query Two { a }")

    assert two.operation(None) is None  # several operations: the request must name one
    one = two.operation("One")
    assert one is not None
    assert one.name is not None
    assert one.name.value == "One"


async def test_without_the_cache_each_request_prepares_its_document_once(store_url: str, tmp_path: Path) -> None:
    settings = app_settings_for(store_url, tmp_path, GATEWAY_DOCUMENT_CACHE_SIZE=0)
    async with serve_in_process(settings) as client:
        documents: Documents = client.app.state.documents
        for _ in range(3):
            await client.execute("query NoCache { products(first: 1) { totalCount } }")

        assert len(documents) == 0
        assert documents.misses == 3  # the endpoint's lookup is handed to execution, not repeated
