"""`gateway persisted ...` and the trusted-document part of `gateway schema check`, run in process.

`main()` runs its own event loop (`asyncio.run`), so tests call it in a worker thread; DATABASE_URL comes from
the environment, as for the real command.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from gateway.schema_file import render
from gateway.trusted_documents import APOLLO_FORMAT
from integrations.store import migrate
from integrations.store.models import TrustedDocument
from integrations.store.types import utcnow
from resolvers.trusted_documents import get_policy, list_documents
from schema import build_schema
from tests.gateway.conftest import Gateway, Result
from tests.support.ports import free_port

CUSTOMERS = "query Customers { customers(first: 1) { totalCount } }"
PRODUCTS = "query Products { products { totalCount } }"


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def manifest(tmp_path: Path, data: Any, name: str = "manifest.json") -> str:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else json.dumps(data), encoding="utf-8")
    return str(path)


def apollo(*operations: tuple[str, str | None, str]) -> dict[str, Any]:
    return {
        "format": APOLLO_FORMAT,
        "version": 1,
        "operations": [{"id": i, "name": name, "type": "query", "body": body} for i, name, body in operations],
    }


@pytest.mark.usefixtures("store_env")
async def test_import_an_apollo_manifest_list_it_and_import_it_again(
    gateway: Gateway, tmp_path: Path, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    path = manifest(tmp_path, apollo((sha(CUSTOMERS), "Customers", CUSTOMERS), ("products-v1", None, PRODUCTS)))
    imported = await gateway("persisted", "import", path, "--client", "acme", "--safelist")
    assert imported == Result(0, "acme: 2 documents added, 0 already present; client safelisted\n", "")
    assert await get_policy(sessionmaker, "acme") is True

    listed = await gateway("persisted", "list")
    assert listed.code == 0
    assert listed.out.splitlines() == [
        "CLIENT  ID                                                                OPERATION  SHA256",
        f"acme    {sha(CUSTOMERS)}  Customers  {sha(CUSTOMERS)[:12]}",
        f"acme    products-v1                                                       Products   {sha(PRODUCTS)[:12]}",
    ]

    again = await gateway("persisted", "import", path, "--client", "acme")
    assert again == Result(0, "acme: 0 documents added, 2 already present\n", "")
    assert len(await list_documents(sessionmaker)) == 2
    assert (await gateway("persisted", "list", "--client", "beta")).out == "no trusted documents for client beta\n"


@pytest.mark.usefixtures("store_env")
async def test_import_a_relay_map_with_md5_ids_and_open_the_client(
    gateway: Gateway, tmp_path: Path, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    md5 = hashlib.md5(CUSTOMERS.encode()).hexdigest()
    path = manifest(tmp_path, {md5: CUSTOMERS, "p": PRODUCTS})
    result = await gateway("persisted", "import", path, "--client", "relay-app", "--no-safelist")
    assert result == Result(0, "relay-app: 2 documents added, 0 already present; client open\n", "")
    stored = await list_documents(sessionmaker, "relay-app")
    assert [(d.document_id, d.sha256, d.operation_name) for d in stored] == [
        (md5, sha(CUSTOMERS), "Customers"),
        ("p", sha(PRODUCTS), "Products"),
    ]
    assert await get_policy(sessionmaker, "relay-app") is False


@pytest.mark.usefixtures("store_env")
async def test_every_invalid_document_is_listed_and_nothing_is_imported(
    gateway: Gateway, tmp_path: Path, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    path = manifest(
        tmp_path,
        apollo(
            ("ok", "Customers", CUSTOMERS),
            ("gone", "Gone", "query Gone { products { totalCount gone } }"),
            ("broken", None, "query Broken {"),
        ),
    )
    result = await gateway("persisted", "import", path, "--client", "acme", "--safelist")
    assert result.code == 1
    assert result.out == ""
    assert result.err.splitlines() == [
        "2 of 3 documents are invalid; nothing imported:",
        "  gone (Gone): Cannot query field 'gone' on type 'ProductConnection'. (line 1, column 36)",
        "  broken (anonymous): Syntax Error: Expected Name, found <EOF>. (line 1, column 15)",
    ]
    assert await list_documents(sessionmaker) == []
    assert await get_policy(sessionmaker, "acme") is False


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "is not JSON: Expecting property name enclosed in double quotes (line 1, column 2)"),
        ("[]", "a manifest is a JSON object"),
        ('{"format": "other", "operations": []}', "unknown manifest format 'other'"),
        ('{"a": 1}', "not a known manifest format (the value of 'a' is not query text)"),
    ],
)
@pytest.mark.usefixtures("store_env")
async def test_a_manifest_of_another_shape_is_refused_in_one_line(
    gateway: Gateway, tmp_path: Path, content: str, message: str
) -> None:
    result = await gateway("persisted", "import", manifest(tmp_path, content), "--client", "acme")
    assert result.code == 1
    assert len(result.err.splitlines()) == 1
    assert result.err.startswith("gateway: ")
    assert message in result.err


@pytest.mark.usefixtures("store_env")
async def test_an_unreadable_manifest_or_a_bad_client_name_is_a_usage_error(gateway: Gateway, tmp_path: Path) -> None:
    missing = await gateway("persisted", "import", str(tmp_path / "missing.json"), "--client", "acme")
    assert missing.code == 2
    assert "cannot read" in missing.err
    assert "No such file or directory" in missing.err
    path = manifest(tmp_path, {"a": CUSTOMERS})
    long_name = await gateway("persisted", "import", path, "--client", "x" * 101)
    assert long_name == Result(2, "", "gateway: client must be at most 100 characters\n")


@pytest.mark.usefixtures("store_env")
async def test_changing_the_text_of_a_stored_id_is_refused(
    gateway: Gateway, tmp_path: Path, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    assert (await gateway("persisted", "import", manifest(tmp_path, {"q": CUSTOMERS}), "--client", "acme")).code == 0
    changed = manifest(tmp_path, {"new": PRODUCTS, "q": PRODUCTS}, "changed.json")
    result = await gateway("persisted", "import", changed, "--client", "acme")
    assert result.code == 1
    assert "already exist with different text" in result.err
    assert result.err.rstrip().endswith(": q")
    assert [d.document_id for d in await list_documents(sessionmaker)] == ["q"]


@pytest.mark.usefixtures("store_env")
async def test_remove_documents(
    gateway: Gateway, tmp_path: Path, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    path = manifest(tmp_path, {"a": CUSTOMERS, "b": PRODUCTS, "c": "{ products { totalCount } }"})
    assert (await gateway("persisted", "import", path, "--client", "acme")).code == 0
    assert (await gateway("persisted", "import", path, "--client", "beta")).code == 0

    unknown = await gateway("persisted", "remove", "--client", "acme", "a", "zz", "yy")
    assert unknown == Result(1, "", "gateway: client 'acme' has no document with id(s): zz, yy\n")
    assert len(await list_documents(sessionmaker, "acme")) == 3
    for usage in (
        ["persisted", "remove", "--client", "acme"],
        ["persisted", "remove", "--client", "acme", "a", "--all"],
    ):
        refused = await gateway(*usage)
        assert refused.code == 2
        assert "give document ids or --all, not both" in refused.err

    assert (await gateway("persisted", "remove", "--client", "acme", "a", "b")).out == "acme: 2 documents removed\n"
    assert (await gateway("persisted", "remove", "--client", "acme", "--all")).out == "acme: 1 documents removed\n"
    assert [(d.client, d.document_id) for d in await list_documents(sessionmaker)] == [
        ("beta", "a"),
        ("beta", "b"),
        ("beta", "c"),
    ]


@pytest.mark.usefixtures("store_env")
async def test_policy(gateway: Gateway, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    safelisted = await gateway("persisted", "policy", "--client", "acme", "--safelist")
    assert safelisted == Result(0, "acme: safelisted (only its trusted documents run)\n", "")
    assert await get_policy(sessionmaker, "acme") is True
    opened = await gateway("persisted", "policy", "--client", "acme", "--open")
    assert opened == Result(0, "acme: open (any valid operation runs)\n", "")
    assert await get_policy(sessionmaker, "acme") is False
    for usage in (["--client", "acme"], ["--client", "acme", "--safelist", "--open"]):
        with pytest.raises(SystemExit) as exited:
            await gateway("persisted", "policy", *usage)
        assert exited.value.code == 2


async def test_persisted_commands_need_a_migrated_database(gateway: Gateway, tmp_path: Path) -> None:
    missing = f"sqlite+aiosqlite:///{tmp_path}/missing.db"
    result = await gateway("persisted", "list", database_url=missing)
    assert result == Result(2, "", f"gateway: no database at {tmp_path}/missing.db (run `gateway db upgrade`)\n")
    assert not (tmp_path / "missing.db").exists()  # reported, not created

    old = f"sqlite+aiosqlite:///{tmp_path}/old.db"
    await asyncio.to_thread(migrate.upgrade, old, "0002")
    result = await gateway("persisted", "policy", "--client", "acme", "--open", database_url=old)
    assert result == Result(2, "", "gateway: the database has no trusted_document table (run `gateway db upgrade`)\n")


async def test_schema_check_fails_on_a_stored_document_the_schema_no_longer_accepts(
    gateway: Gateway, store_env: str, engine: AsyncEngine, tmp_path: Path
) -> None:
    sdl = tmp_path / "schema.graphql"
    sdl.write_text(render(build_schema()), encoding="utf-8")
    clean = await gateway("schema", "check", "--file", str(sdl))
    assert clean == Result(0, f"{sdl} is up to date\n0 trusted documents validate against the schema\n", "")

    gone = "query Old { customers { edges { node { faxNumber } } } }"
    rows = [  # (client, id, document, operation name)
        ("acme", "ok", CUSTOMERS, "Customers"),
        ("acme", "old", gone, "Old"),
        ("beta", "old", gone, None),
    ]
    values = [
        {"client": c, "document_id": i, "sha256": sha(d), "document": d, "operation_name": n, "created_at": utcnow()}
        for c, i, d, n in rows
    ]
    async with engine.begin() as connection:  # stored under an earlier schema, as if a field had been removed
        await connection.execute(insert(TrustedDocument), values)

    broken = await gateway("schema", "check", "--file", str(sdl))
    assert broken.code == 1
    assert broken.out == f"{sdl} is up to date\n"
    error = "Cannot query field 'faxNumber' on type 'Customer'. (line 1, column 40)"
    assert broken.err.splitlines() == [
        "2 of 3 trusted documents fail against the schema:",
        f"  acme/old (Old): {error}",
        f"  beta/old (anonymous): {error}",
    ]


async def test_schema_check_skips_documents_without_a_usable_database(gateway: Gateway, tmp_path: Path) -> None:
    sdl = tmp_path / "schema.graphql"
    sdl.write_text(render(build_schema()), encoding="utf-8")
    old = f"sqlite+aiosqlite:///{tmp_path}/old.db"
    await asyncio.to_thread(migrate.upgrade, old, "0002")
    cases = {
        f"sqlite+aiosqlite:///{tmp_path}/missing.db": f"no database at {tmp_path}/missing.db",
        old: "the database has no trusted_document table",
        f"postgresql://postgres@127.0.0.1:{free_port()}/nothing": "cannot use the database: ",
    }
    for database_url, note in cases.items():
        result = await gateway("schema", "check", "--file", str(sdl), database_url=database_url)
        assert result.code == 0, result
        assert result.out == f"{sdl} is up to date\n"
        assert len(result.err.splitlines()) == 1
        assert result.err.startswith(f"note: trusted documents not checked: {note}")
    assert not (tmp_path / "missing.db").exists()
