"""Trusted documents in the store: import, list, remove, policies, and the cached request-time lookup."""

from __future__ import annotations

import asyncio
import hashlib

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from integrations.errors import InputErrors, UserInputError
from integrations.store.engine import create_sessionmaker
from integrations.store.models import TrustedDocument
from resolvers.trusted_documents import (
    DocumentConflictError,
    TrustedDocumentInput,
    TrustedDocuments,
    UnknownDocumentsError,
    document_hash,
    get_policy,
    import_documents,
    list_documents,
    remove_documents,
    set_policy,
)
from tests.conftest import StatementCounter

CUSTOMERS = "query Customers { customers(first: 1) { totalCount } }"
PRODUCTS = "query Products { products { totalCount } }"


def doc(document_id: str, text: str, name: str | None = None) -> TrustedDocumentInput:
    return TrustedDocumentInput(document_id, text, name)


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return create_sessionmaker(engine)


async def count(sessionmaker: async_sessionmaker[AsyncSession]) -> int:
    async with sessionmaker() as session:
        return int((await session.execute(select(func.count()).select_from(TrustedDocument))).scalar_one())


async def test_import_stores_documents_with_the_sha256_of_their_text(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    result = await import_documents(
        sessionmaker, "acme", [doc("c1", CUSTOMERS, "Customers"), doc("p1", PRODUCTS)], safelist=None
    )
    assert result.added == ["c1", "p1"]
    assert result.unchanged == []
    stored = await list_documents(sessionmaker)
    assert [(d.client, d.document_id, d.sha256, d.document, d.operation_name) for d in stored] == [
        ("acme", "c1", sha(CUSTOMERS), CUSTOMERS, "Customers"),
        ("acme", "p1", sha(PRODUCTS), PRODUCTS, None),
    ]
    assert document_hash(CUSTOMERS) == sha(CUSTOMERS)


async def test_reimporting_the_same_documents_is_a_no_op(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    await import_documents(sessionmaker, "acme", [doc("c1", CUSTOMERS)], safelist=None)
    before = await list_documents(sessionmaker)
    result = await import_documents(sessionmaker, "acme", [doc("c1", CUSTOMERS), doc("p1", PRODUCTS)], safelist=None)
    assert result.added == ["p1"]
    assert result.unchanged == ["c1"]
    again = await import_documents(sessionmaker, "acme", [doc("c1", CUSTOMERS), doc("p1", PRODUCTS)], safelist=None)
    assert again.added == []
    assert await count(sessionmaker) == 2
    assert (await list_documents(sessionmaker))[0] == before[0]  # untouched, created_at included


async def test_an_id_stored_with_other_text_fails_the_whole_import(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    await import_documents(sessionmaker, "acme", [doc("c1", CUSTOMERS)], safelist=None)
    with pytest.raises(DocumentConflictError) as raised:
        await import_documents(sessionmaker, "acme", [doc("new", PRODUCTS), doc("c1", PRODUCTS)], safelist=True)
    assert raised.value.document_ids == ["c1"]
    assert "immutable" in raised.value.message
    assert [d.document_id for d in await list_documents(sessionmaker)] == ["c1"]  # "new" was not stored
    assert await get_policy(sessionmaker, "acme") is False  # nor the policy
    # The same id under another client is another document.
    await import_documents(sessionmaker, "other", [doc("c1", PRODUCTS)], safelist=None)


async def test_one_id_twice_in_an_import(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    result = await import_documents(sessionmaker, "acme", [doc("c1", CUSTOMERS), doc("c1", CUSTOMERS)], safelist=None)
    assert result.added == ["c1"]
    with pytest.raises(InputErrors, match="two different texts"):
        await import_documents(sessionmaker, "acme", [doc("x", CUSTOMERS), doc("x", PRODUCTS)], safelist=None)
    with pytest.raises(InputErrors, match="1 to 200 characters"):
        await import_documents(sessionmaker, "acme", [doc("", CUSTOMERS), doc("y" * 201, PRODUCTS)], safelist=None)
    assert await count(sessionmaker) == 1


@pytest.mark.parametrize("client", ["", "x" * 101, " acme", "acme\n"])
async def test_client_names_are_checked(sessionmaker: async_sessionmaker[AsyncSession], client: str) -> None:
    with pytest.raises(UserInputError):
        await import_documents(sessionmaker, client, [doc("c1", CUSTOMERS)], safelist=None)
    with pytest.raises(UserInputError):
        await set_policy(sessionmaker, client, safelist=True)


async def test_policies(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    assert await get_policy(sessionmaker, "acme") is False
    await import_documents(sessionmaker, "acme", [doc("c1", CUSTOMERS)], safelist=True)
    assert await get_policy(sessionmaker, "acme") is True
    await import_documents(sessionmaker, "acme", [doc("p1", PRODUCTS)], safelist=None)  # left as it is
    assert await get_policy(sessionmaker, "acme") is True
    await set_policy(sessionmaker, "acme", safelist=False)
    assert await get_policy(sessionmaker, "acme") is False
    await set_policy(sessionmaker, "other", safelist=True)  # a client without documents may have a policy
    assert await get_policy(sessionmaker, "other") is True
    assert await get_policy(sessionmaker, "acme") is False


async def test_list_and_remove(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    await import_documents(sessionmaker, "acme", [doc("c1", CUSTOMERS), doc("p1", PRODUCTS)], safelist=None)
    await import_documents(sessionmaker, "beta", [doc("c1", CUSTOMERS)], safelist=None)
    assert [(d.client, d.document_id) for d in await list_documents(sessionmaker, "acme")] == [
        ("acme", "c1"),
        ("acme", "p1"),
    ]
    assert [d.client for d in await list_documents(sessionmaker)] == ["acme", "acme", "beta"]

    with pytest.raises(UnknownDocumentsError) as raised:
        await remove_documents(sessionmaker, "acme", ["c1", "nope"])
    assert raised.value.document_ids == ["nope"]
    assert await count(sessionmaker) == 3  # nothing removed
    with pytest.raises(ValueError, match="not both"):
        await remove_documents(sessionmaker, "acme", ["c1"], all_documents=True)
    with pytest.raises(ValueError, match="not both"):
        await remove_documents(sessionmaker, "acme")

    assert await remove_documents(sessionmaker, "acme", ["c1", "c1"]) == 1
    assert await remove_documents(sessionmaker, "acme", all_documents=True) == 1
    assert await remove_documents(sessionmaker, "acme", all_documents=True) == 0
    assert [(d.client, d.document_id) for d in await list_documents(sessionmaker)] == [("beta", "c1")]


async def test_find_by_id_by_prefixed_hash_and_by_bare_hash(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    await import_documents(sessionmaker, "acme", [doc("c1", CUSTOMERS)], safelist=None)
    documents = TrustedDocuments(sessionmaker)
    digest = sha(CUSTOMERS)
    assert await documents.find("acme", "c1") == CUSTOMERS
    assert await documents.find("acme", f"sha256:{digest}") == CUSTOMERS
    assert await documents.find("acme", digest) == CUSTOMERS
    assert await documents.find("acme", digest.upper()) == CUSTOMERS
    assert await documents.find("acme", "c2") is None
    assert await documents.find("acme", f"sha256:{sha(PRODUCTS)}") is None
    assert await documents.find("acme", "sha256:not-a-hash") is None
    assert await documents.find("acme", "x" * 500) is None
    assert await documents.find("acme", "") is None


async def test_a_document_is_visible_only_to_its_client(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    await import_documents(sessionmaker, "acme", [doc("c1", CUSTOMERS)], safelist=True)
    documents = TrustedDocuments(sessionmaker)
    for client in ("beta", None, ""):
        assert await documents.find(client, "c1") is None
        assert await documents.find(client, f"sha256:{sha(CUSTOMERS)}") is None
        assert await documents.find(client, sha(CUSTOMERS)) is None
    assert await documents.is_safelisted("acme") is True
    assert await documents.is_safelisted("beta") is False
    assert await documents.is_safelisted(None) is False


async def test_an_id_that_looks_like_a_hash_prefers_the_document_with_that_id(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    # "p1"'s id is the sha256 of CUSTOMERS; asked by that id, the client means "p1".
    await import_documents(sessionmaker, "acme", [doc("c1", CUSTOMERS), doc(sha(CUSTOMERS), PRODUCTS)], safelist=None)
    documents = TrustedDocuments(sessionmaker)
    assert await documents.find("acme", sha(CUSTOMERS)) == PRODUCTS
    assert await documents.find("acme", sha(PRODUCTS)) == PRODUCTS
    assert await documents.find("acme", "c1") == CUSTOMERS


async def test_lookups_are_cached_so_the_hot_path_costs_no_sql(
    engine: AsyncEngine, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    await import_documents(sessionmaker, "acme", [doc("c1", CUSTOMERS)], safelist=True)
    documents = TrustedDocuments(sessionmaker)
    sql = StatementCounter(engine)
    first = [
        await documents.find("acme", "c1"),
        await documents.find("acme", f"sha256:{sha(CUSTOMERS)}"),
        await documents.find("acme", "missing"),
        await documents.is_safelisted("acme"),
        await documents.is_safelisted("unknown"),
    ]
    assert first == [CUSTOMERS, CUSTOMERS, None, True, False]
    assert sql.count == 5  # one statement per distinct question
    sql.reset()
    for _ in range(100):
        assert await documents.find("acme", "c1") == CUSTOMERS
        assert await documents.find("acme", f"sha256:{sha(CUSTOMERS)}") == CUSTOMERS
        assert await documents.find("acme", "missing") is None  # negative answers are cached too
        assert await documents.is_safelisted("acme") is True
        assert await documents.is_safelisted("unknown") is False
        assert await documents.find(None, "c1") is None  # no client: no question to ask
    assert sql.count == 0


async def test_cached_answers_expire_after_ttl(
    engine: AsyncEngine, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    clock = Clock()
    documents = TrustedDocuments(sessionmaker, ttl=30, clock=clock)
    assert await documents.find("acme", "c1") is None
    assert await documents.is_safelisted("acme") is False
    await import_documents(sessionmaker, "acme", [doc("c1", CUSTOMERS)], safelist=True)  # e.g. by the CLI
    clock.now += 29
    assert await documents.find("acme", "c1") is None  # still the cached answer
    assert await documents.is_safelisted("acme") is False
    clock.now += 1
    assert await documents.find("acme", "c1") == CUSTOMERS
    assert await documents.is_safelisted("acme") is True
    await set_policy(sessionmaker, "acme", safelist=False)
    documents.clear()
    assert await documents.is_safelisted("acme") is False


async def test_the_cache_is_bounded(engine: AsyncEngine, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    await import_documents(sessionmaker, "acme", [doc("c1", CUSTOMERS), doc("p1", PRODUCTS)], safelist=None)
    documents = TrustedDocuments(sessionmaker, max_entries=2)
    sql = StatementCounter(engine)
    for document_id in ("c1", "p1", "missing"):  # "c1" is the least recently used, and goes
        await documents.find("acme", document_id)
    sql.reset()
    await documents.find("acme", "p1")
    await documents.find("acme", "missing")
    assert sql.count == 0
    assert await documents.find("acme", "c1") == CUSTOMERS
    assert sql.count == 1


async def test_concurrent_imports_of_one_manifest_store_it_once(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    manifest = [doc("c1", CUSTOMERS), doc("p1", PRODUCTS)]
    results = await asyncio.gather(*(import_documents(sessionmaker, "acme", manifest, safelist=True) for _ in range(8)))
    assert sorted(len(result.added) for result in results)[-1] <= 2
    assert sum(len(result.added) for result in results) == 2
    assert await count(sessionmaker) == 2
    assert await get_policy(sessionmaker, "acme") is True
