"""Trusted documents over HTTP: `documentId`, APQ hashes of trusted documents, and safelisted clients."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from resolvers.trusted_documents import TrustedDocumentInput, import_documents
from tests.conftest import GraphQLClient, app_settings_for, serve_in_process

COUNT = "query CountProducts { products(first: 1) { totalCount } }"
COUNT_HASH = hashlib.sha256(COUNT.encode()).hexdigest()
OTHER = "query CountCustomers { customers(first: 1) { totalCount } }"
PARTNER = {"X-Client-Name": "partner"}
OPEN = {"X-Client-Name": "open-app"}


@pytest.fixture
async def gateway(store_url: str, tmp_path: Path) -> AsyncIterator[GraphQLClient]:
    async with serve_in_process(app_settings_for(store_url, tmp_path)) as client:
        sessionmaker = client.app.state.services.sessionmaker
        documents = [TrustedDocumentInput("count-products", COUNT, "CountProducts")]
        await import_documents(sessionmaker, "partner", documents, safelist=True)
        await import_documents(sessionmaker, "open-app", documents, safelist=False)
        yield client


async def post(client: GraphQLClient, body: dict[str, Any], headers: dict[str, str]) -> httpx.Response:
    return await client.http.post("/graphql", json=body, headers=headers)


def code(response: httpx.Response) -> str:
    return str(response.json()["errors"][0]["extensions"]["code"])


async def test_a_client_runs_its_document_by_id_hash_or_get(gateway: GraphQLClient) -> None:
    expected = {"data": {"products": {"totalCount": 0}}}
    by_id = await post(gateway, {"documentId": "count-products"}, PARTNER)
    by_hash = await post(gateway, {"documentId": f"sha256:{COUNT_HASH}"}, PARTNER)
    by_get = await gateway.http.get("/graphql", params={"documentId": "count-products"}, headers=PARTNER)

    for response in (by_id, by_hash, by_get):
        assert response.status_code == 200, response.text
        assert response.json() == expected
    assert by_get.headers["cache-control"] == "public, max-age=60"  # a short URL a CDN can cache


async def test_a_safelisted_client_may_run_nothing_else_and_is_refused_before_parsing(gateway: GraphQLClient) -> None:
    other = await post(gateway, {"query": OTHER}, PARTNER)
    garbage = await post(gateway, {"query": "query {"}, PARTNER)  # not even GraphQL: refused, not parsed
    apq_unknown = await post(
        gateway,
        {
            "query": OTHER,
            "extensions": {"persistedQuery": {"version": 1, "sha256Hash": hashlib.sha256(OTHER.encode()).hexdigest()}},
        },
        PARTNER,
    )

    for response in (other, garbage, apq_unknown):
        assert response.status_code == 403
        assert code(response) == "TRUSTED_DOCUMENT_REQUIRED"
    assert "partner" in other.json()["errors"][0]["message"]
    persisted = gateway.app.state.services.cache
    assert await persisted.get(f"apq:{hashlib.sha256(OTHER.encode()).hexdigest()}") is None  # nothing registered


async def test_a_safelisted_client_may_send_its_trusted_text_or_its_apq_hash(gateway: GraphQLClient) -> None:
    as_text = await post(gateway, {"query": COUNT}, PARTNER)
    as_apq = await post(gateway, {"extensions": {"persistedQuery": {"version": 1, "sha256Hash": COUNT_HASH}}}, PARTNER)

    assert as_text.json() == {"data": {"products": {"totalCount": 0}}}
    assert as_apq.json() == {"data": {"products": {"totalCount": 0}}}  # no APQ registration round trip needed


async def test_documents_belong_to_their_client(gateway: GraphQLClient) -> None:
    stranger = await post(gateway, {"documentId": "count-products"}, {"X-Client-Name": "stranger"})
    anonymous = await post(gateway, {"documentId": "count-products"}, {})

    for response in (stranger, anonymous):
        assert response.status_code == 404
        assert code(response) == "PERSISTED_DOCUMENT_NOT_FOUND"


async def test_an_open_client_runs_trusted_and_arbitrary_documents(gateway: GraphQLClient) -> None:
    trusted = await post(gateway, {"documentId": "count-products"}, OPEN)
    arbitrary = await post(gateway, {"query": OTHER}, OPEN)
    anonymous = await post(gateway, {"query": OTHER}, {})

    assert trusted.status_code == arbitrary.status_code == anonymous.status_code == 200


async def test_query_and_document_id_together_are_refused(gateway: GraphQLClient) -> None:
    both = await post(gateway, {"documentId": "count-products", "query": COUNT}, PARTNER)
    empty = await post(gateway, {"documentId": ""}, PARTNER)

    assert both.status_code == 400
    assert empty.status_code == 400


async def test_trusted_documents_only_locks_every_client_down(store_url: str, tmp_path: Path) -> None:
    settings = app_settings_for(store_url, tmp_path, GATEWAY_TRUSTED_DOCUMENTS_ONLY=True)
    async with serve_in_process(settings) as client:
        sessionmaker = client.app.state.services.sessionmaker
        await import_documents(sessionmaker, "open-app", [TrustedDocumentInput("count", COUNT)], safelist=False)

        anonymous = await post(client, {"query": COUNT}, {})
        open_other = await post(client, {"query": OTHER}, OPEN)
        open_trusted = await post(client, {"documentId": "count"}, OPEN)

        assert (anonymous.status_code, code(anonymous)) == (403, "TRUSTED_DOCUMENT_REQUIRED")
        assert open_other.status_code == 403
        assert open_trusted.status_code == 200


async def test_the_client_header_is_configurable(store_url: str, tmp_path: Path) -> None:
    settings = app_settings_for(store_url, tmp_path, GATEWAY_CLIENT_HEADER="apollographql-client-name")
    async with serve_in_process(settings) as client:
        sessionmaker = client.app.state.services.sessionmaker
        await import_documents(sessionmaker, "partner", [TrustedDocumentInput("count", COUNT)], safelist=True)

        refused = await post(client, {"query": OTHER}, {"apollographql-client-name": "partner"})
        ignored_header = await post(client, {"query": OTHER}, PARTNER)

        assert refused.status_code == 403
        assert ignored_header.status_code == 200
