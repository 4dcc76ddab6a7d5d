"""Trusted documents over HTTP for partners authenticated by API keys: `documentId`, APQ hashes of trusted
documents, safelisted clients, and keys that are refused."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from resolvers.access.api_keys import create_api_key, new_key, revoke_api_key
from resolvers.trusted_documents import TrustedDocumentInput, import_documents
from tests.conftest import GraphQLClient, app_settings_for, serve_in_process

COUNT = "query CountProducts { products(first: 1) { totalCount } }"
COUNT_HASH = hashlib.sha256(COUNT.encode()).hexdigest()
OTHER = "query CountCustomers { customers(first: 1) { totalCount } }"
SCOPES = "products:read customers:read"
NO_CREDENTIALS = {"Authorization": ""}
"""The test client sends an admin token by default; an empty header means no credentials at all."""


class Partners:
    """The app, with an API key for the safelisted client `partner`, the open client `open-app` and `stranger`."""

    def __init__(self, client: GraphQLClient, keys: dict[str, str]) -> None:
        self.client = client
        self.keys = keys

    def key(self, client: str) -> dict[str, str]:
        return {"X-API-Key": self.keys[client]}

    async def post(self, body: dict[str, Any], headers: dict[str, str]) -> httpx.Response:
        return await self.client.http.post("/graphql", json=body, headers=headers)


def sessionmaker_of(client: GraphQLClient) -> async_sessionmaker[AsyncSession]:
    sessionmaker: async_sessionmaker[AsyncSession] = client.app.state.services.sessionmaker
    return sessionmaker


async def keys_for(client: GraphQLClient, *names: str) -> dict[str, str]:
    sessionmaker = sessionmaker_of(client)
    return {name: (await create_api_key(sessionmaker, name, SCOPES)).key for name in names}


@pytest.fixture
async def partners(store_url: str, tmp_path: Path) -> AsyncIterator[Partners]:
    async with serve_in_process(app_settings_for(store_url, tmp_path)) as client:
        sessionmaker = sessionmaker_of(client)
        documents = [TrustedDocumentInput("count-products", COUNT, "CountProducts")]
        await import_documents(sessionmaker, "partner", documents, safelist=True)
        await import_documents(sessionmaker, "open-app", documents, safelist=False)
        yield Partners(client, await keys_for(client, "partner", "open-app", "stranger"))


def code(response: httpx.Response) -> str:
    return str(response.json()["errors"][0]["extensions"]["code"])


async def test_a_client_runs_its_document_by_id_hash_or_get(partners: Partners) -> None:
    expected = {"data": {"products": {"totalCount": 0}}}
    partner = partners.key("partner")
    by_id = await partners.post({"documentId": "count-products"}, partner)
    by_hash = await partners.post({"documentId": f"sha256:{COUNT_HASH}"}, partner)
    get_headers = {**partner, "GraphQL-Require-Preflight": "1"}  # a GET must show it is no cross-site form
    by_get = await partners.client.http.get("/graphql", params={"documentId": "count-products"}, headers=get_headers)

    for response in (by_id, by_hash, by_get):
        assert response.status_code == 200, response.text
        assert response.json() == expected
    assert by_get.headers["cache-control"] == "public, max-age=60"  # a short URL a CDN can cache


async def test_a_safelisted_client_may_run_nothing_else_and_is_refused_before_parsing(partners: Partners) -> None:
    partner = partners.key("partner")
    other = await partners.post({"query": OTHER}, partner)
    garbage = await partners.post({"query": "query {"}, partner)  # not even GraphQL: refused, not parsed
    other_hash = hashlib.sha256(OTHER.encode()).hexdigest()
    apq_unknown = await partners.post(
        {"query": OTHER, "extensions": {"persistedQuery": {"version": 1, "sha256Hash": other_hash}}}, partner
    )

    for response in (other, garbage, apq_unknown):
        assert response.status_code == 403
        assert code(response) == "TRUSTED_DOCUMENT_REQUIRED"
    assert "partner" in other.json()["errors"][0]["message"]
    persisted = partners.client.app.state.services.cache
    assert await persisted.get(f"apq:{other_hash}") is None  # nothing registered


async def test_a_safelisted_client_may_send_its_trusted_text_or_its_apq_hash(partners: Partners) -> None:
    partner = partners.key("partner")
    as_text = await partners.post({"query": COUNT}, partner)
    as_apq = await partners.post({"extensions": {"persistedQuery": {"version": 1, "sha256Hash": COUNT_HASH}}}, partner)

    assert as_text.json() == {"data": {"products": {"totalCount": 0}}}
    assert as_apq.json() == {"data": {"products": {"totalCount": 0}}}  # no APQ registration round trip needed


async def test_documents_belong_to_the_client_of_the_key(partners: Partners) -> None:
    stranger = await partners.post({"documentId": "count-products"}, partners.key("stranger"))
    anonymous = await partners.post({"documentId": "count-products"}, NO_CREDENTIALS)

    for response in (stranger, anonymous):
        assert response.status_code == 404
        assert code(response) == "PERSISTED_DOCUMENT_NOT_FOUND"
    assert "'stranger'" in stranger.json()["errors"][0]["message"]
    assert "without an API key" in anonymous.json()["errors"][0]["message"]


async def test_an_open_client_runs_trusted_and_arbitrary_documents(partners: Partners) -> None:
    trusted = await partners.post({"documentId": "count-products"}, partners.key("open-app"))
    arbitrary = await partners.post({"query": OTHER}, partners.key("open-app"))
    anonymous = await partners.post({"query": OTHER}, NO_CREDENTIALS)

    assert trusted.status_code == arbitrary.status_code == anonymous.status_code == 200
    assert arbitrary.json() == {"data": {"customers": {"totalCount": 0}}}


async def test_a_key_sent_as_a_bearer_token_binds_its_client_too(partners: Partners) -> None:
    bearer = {"Authorization": f"Bearer {partners.keys['partner']}"}
    trusted = await partners.post({"documentId": "count-products"}, bearer)
    other = await partners.post({"query": OTHER}, bearer)

    assert trusted.status_code == 200
    assert (other.status_code, code(other)) == (403, "TRUSTED_DOCUMENT_REQUIRED")


async def test_a_client_name_header_names_no_client(partners: Partners) -> None:
    """Only the key decides the client: the header that used to name one can neither borrow nor escape a policy."""
    borrowed = await partners.post({"documentId": "count-products"}, {**NO_CREDENTIALS, "X-Client-Name": "partner"})
    escaped = await partners.post({"query": OTHER}, {**partners.key("partner"), "X-Client-Name": "open-app"})

    assert (borrowed.status_code, code(borrowed)) == (404, "PERSISTED_DOCUMENT_NOT_FOUND")
    assert (escaped.status_code, code(escaped)) == (403, "TRUSTED_DOCUMENT_REQUIRED")


async def test_query_and_document_id_together_are_refused(partners: Partners) -> None:
    both = await partners.post({"documentId": "count-products", "query": COUNT}, partners.key("partner"))
    empty = await partners.post({"documentId": ""}, partners.key("partner"))

    assert both.status_code == 400
    assert empty.status_code == 400


async def test_unknown_revoked_or_forged_keys_are_unauthenticated(partners: Partners) -> None:
    sessionmaker = sessionmaker_of(partners.client)
    revoked = await create_api_key(sessionmaker, "partner", SCOPES)
    await revoke_api_key(sessionmaker, revoked.record.public_id)
    real = partners.keys["partner"]
    forged = real[:-4] + ("aaaa" if not real.endswith("aaaa") else "bbbb")  # right id, wrong secret
    refused = {
        "unknown": {"X-API-Key": new_key()[1]},  # well formed, never stored
        "revoked": {"X-API-Key": revoked.key},
        "forged": {"X-API-Key": forged},
        "malformed": {"X-API-Key": "gwk_not-a-key"},
        "revoked bearer": {"Authorization": f"Bearer {revoked.key}"},
    }
    for name, headers in refused.items():
        for body in ({"documentId": "count-products"}, {"query": COUNT}):
            response = await partners.post(body, headers)
            assert response.status_code == 401, name
            assert code(response) == "UNAUTHENTICATED", name
            assert response.headers["www-authenticate"] == 'Bearer realm="gateway", error="invalid_token"', name
            assert "data" not in response.json(), name


async def test_trusted_documents_only_locks_every_client_down(store_url: str, tmp_path: Path) -> None:
    settings = app_settings_for(store_url, tmp_path, GATEWAY_TRUSTED_DOCUMENTS_ONLY=True)
    async with serve_in_process(settings) as client:
        sessionmaker = sessionmaker_of(client)
        await import_documents(sessionmaker, "open-app", [TrustedDocumentInput("count", COUNT)], safelist=False)
        open_app = {"X-API-Key": (await keys_for(client, "open-app"))["open-app"]}

        anonymous = await client.http.post("/graphql", json={"query": COUNT}, headers=NO_CREDENTIALS)
        open_other = await client.http.post("/graphql", json={"query": OTHER}, headers=open_app)
        open_trusted = await client.http.post("/graphql", json={"documentId": "count"}, headers=open_app)

        assert (anonymous.status_code, code(anonymous)) == (403, "TRUSTED_DOCUMENT_REQUIRED")
        assert open_other.status_code == 403
        assert open_trusted.status_code == 200
