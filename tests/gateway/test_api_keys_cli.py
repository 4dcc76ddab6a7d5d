"""`gateway apikey create | list | revoke`, run through the real entry point against a migrated store.

`main()` runs its own event loop (`asyncio.run`), so tests call it in a worker thread; DATABASE_URL comes from
the environment, as for the real command.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from gateway import cli
from integrations.store import migrate
from integrations.store.models import metadata
from resolvers.access import api_keys
from resolvers.access.api_keys import ApiKeys, list_api_keys
from tests.gateway.conftest import Gateway, Result

KEY = re.compile(r"^    (gwk_[0-9a-f]{12}_[0-9A-Za-z]{43})$", re.MULTILINE)
TIMESTAMP = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"


async def create(gateway: Gateway, *args: str) -> tuple[str, str]:
    """Create a key; return (its id, the key)."""
    result = await gateway("apikey", "create", *args)
    assert result.code == 0, result
    match = KEY.search(result.out)
    assert match is not None, result.out
    key = match.group(1)
    return key[4:16], key


@pytest.mark.usefixtures("store_env")
async def test_create_prints_the_key_once_and_stores_only_its_hash(
    gateway: Gateway, engine: AsyncEngine, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    result = await gateway("apikey", "create", "--client", "acme", "--scopes", "products:read orders:read")
    assert result.code == 0
    assert result.err == ""
    [key] = KEY.findall(result.out)
    public_id = key[4:16]
    assert result.out.splitlines() == [
        f"API key {public_id} created for client acme (scopes: orders:read products:read)",
        "",
        f"    {key}",
        "",
        "Copy the key now: it will not be shown again (only its hash is stored).",
        f"Partners send it as `X-API-Key: <key>`; revoke it with `gateway apikey revoke {public_id}`.",
    ]

    async with engine.connect() as connection:
        row = (await connection.execute(select(metadata.tables["api_key"]))).one()
    assert row.public_id == public_id
    assert row.key_hash == hashlib.sha256(key.encode()).hexdigest()
    assert all(key not in str(value) for value in row)

    verifier = ApiKeys(sessionmaker)
    principal = await verifier.principal(key)
    await verifier.drain()
    assert principal is not None
    assert (principal.client, principal.scopes) == ("acme", frozenset({"orders:read", "products:read"}))


@pytest.mark.usefixtures("store_env")
async def test_list_shows_everything_but_the_keys(
    gateway: Gateway, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    assert await gateway("apikey", "list") == Result(0, "no API keys\n", "")
    acme_id, acme_key = await create(gateway, "--client", "acme", "--scopes", "orders:read", "--label", "CI runner")
    beta_id, beta_key = await create(gateway, "--client", "beta", "--scopes", "products:read customers:read")
    verifier = ApiKeys(sessionmaker)
    assert await verifier.principal(beta_key) is not None  # recorded as its last use
    await verifier.drain()

    listed = await gateway("apikey", "list")
    assert listed.code == 0
    lines = listed.out.splitlines()
    assert re.split(r"\s{2,}", lines[0]) == ["ID", "CLIENT", "SCOPES", "CREATED", "LAST USED", "REVOKED", "LABEL"]
    acme, beta = (re.split(r"\s{2,}", line) for line in lines[1:])
    assert acme[:3] == [acme_id, "acme", "orders:read"]
    assert acme[4:] == ["never", "-", "CI runner"]
    assert beta[:3] == [beta_id, "beta", "customers:read,products:read"]
    assert beta[5:] == ["-", "-"]
    for timestamp in (acme[3], beta[3], beta[4]):
        assert re.fullmatch(TIMESTAMP, timestamp)
    assert len(lines) == 3
    assert {line.index(created) for line, created in zip(lines, ("CREATED", acme[3], beta[3]), strict=True)} == {
        lines[0].index("CREATED")
    }  # columns line up
    for secret in (acme_key, beta_key, acme_key[17:], hashlib.sha256(acme_key.encode()).hexdigest()):
        assert secret not in listed.out

    only_beta = await gateway("apikey", "list", "--client", "beta")
    assert [line.split()[0] for line in only_beta.out.splitlines()] == ["ID", beta_id]
    assert await gateway("apikey", "list", "--client", "nobody") == Result(0, "no API keys for client nobody\n", "")


@pytest.mark.usefixtures("store_env")
async def test_revoke_is_idempotent_and_takes_effect(
    gateway: Gateway, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    public_id, key = await create(gateway, "--client", "acme", "--scopes", "orders:read")

    revoked = await gateway("apikey", "revoke", public_id)
    assert revoked == Result(
        0, f"API key {public_id} of client acme revoked; running gateways refuse it within 30 seconds\n", ""
    )
    again = await gateway("apikey", "revoke", public_id)
    assert again.code == 0
    assert re.fullmatch(rf"API key {public_id} of client acme was already revoked at {TIMESTAMP}\n", again.out)

    listed = await gateway("apikey", "list")
    row = re.split(r"\s{2,}", listed.out.splitlines()[1])
    assert row[:3] == [public_id, "acme", "orders:read"]
    assert row[4] == "never"
    assert re.fullmatch(TIMESTAMP, row[5])
    [record] = await list_api_keys(sessionmaker)
    assert record.revoked
    assert await ApiKeys(sessionmaker).principal(key) is None


def test_the_cli_states_the_gateways_cache_ttl() -> None:
    """What `revoke` promises is what a gateway does."""
    assert cli.API_KEY_CACHE_TTL == api_keys.CACHE_TTL


@pytest.mark.usefixtures("store_env")
async def test_bad_input_is_refused_with_one_line_and_an_exit_code(
    gateway: Gateway, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    cases = {
        ("revoke", "0123456789ab"): Result(
            1, "", "gateway: no API key with id '0123456789ab' (`gateway apikey list` shows the ids)\n"
        ),
        ("create", "--client", "", "--scopes", "orders:read"): Result(2, "", "gateway: client must not be empty\n"),
        ("create", "--client", "acme", "--scopes", "orders:read Orders"): Result(
            2,
            "",
            "gateway: invalid scope 'Orders': a scope is lower-case words joined by colons, e.g. orders:read\n",
        ),
        ("create", "--client", "acme", "--scopes", " "): Result(
            2, "", 'gateway: give at least one scope, e.g. "orders:read"\n'
        ),
        ("create", "--client", "acme", "--scopes", "orders:read", "--label", ""): Result(
            2, "", "gateway: label must not be empty (leave it out instead)\n"
        ),
    }
    for args, expected in cases.items():
        assert await gateway("apikey", *args) == expected
    assert await list_api_keys(sessionmaker) == []

    public_id, key = await create(gateway, "--client", "acme", "--scopes", "orders:read")
    whole_key = await gateway("apikey", "revoke", key)
    assert whole_key == Result(2, "", f"gateway: give the key's id ({public_id}), not the key itself\n")
    assert not (await list_api_keys(sessionmaker))[0].revoked

    for usage in (["create", "--client", "acme"], ["create", "--scopes", "orders:read"], ["revoke"], ["nothing"]):
        with pytest.raises(SystemExit) as exited:
            await gateway("apikey", *usage)
        assert exited.value.code == 2


@pytest.mark.parametrize(
    ("command", "mentions"),
    [
        ([], ["create", "list", "revoke"]),
        (["create"], ["--client NAME", "--scopes SCOPES", "--label TEXT", "shown"]),
        (["list"], ["--client NAME", "Neither keys nor their hashes"]),
        (["revoke"], ["ID", "within 30 seconds"]),
    ],
)
async def test_every_command_has_help(
    gateway: Gateway, capsys: pytest.CaptureFixture[str], command: list[str], mentions: list[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        await gateway("apikey", *command, "--help")
    assert exited.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    assert text.startswith(f"usage: gateway apikey {' '.join(command)}".rstrip())
    for mention in mentions:
        assert mention in text


async def test_apikey_commands_need_a_migrated_database(gateway: Gateway, tmp_path: Path) -> None:
    missing = f"sqlite+aiosqlite:///{tmp_path}/missing.db"
    result = await gateway("apikey", "list", database_url=missing)
    assert result == Result(2, "", f"gateway: no database at {tmp_path}/missing.db (run `gateway db upgrade`)\n")
    assert not (tmp_path / "missing.db").exists()

    old = f"sqlite+aiosqlite:///{tmp_path}/old.db"
    await asyncio.to_thread(migrate.upgrade, old, "0003")
    result = await gateway("apikey", "create", "--client", "acme", "--scopes", "orders:read", database_url=old)
    assert result == Result(2, "", "gateway: the database has no api_key table (run `gateway db upgrade`)\n")
