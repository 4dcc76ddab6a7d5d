"""Alembic is the only way the schema is made: idempotent upgrades, clean downgrades, models in sync."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect
from sqlalchemy.engine import Connection

from integrations.store import migrate
from integrations.store.engine import create_engine
from integrations.store.models import metadata
from tests.conftest import postgres_admin_execute, postgres_url


async def schema_diff(url: str) -> list[object]:
    engine = create_engine(url)

    def compare(connection: Connection) -> list[object]:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return list(compare_metadata(context, metadata))

    try:
        async with engine.connect() as connection:
            return await connection.run_sync(compare)
    finally:
        await engine.dispose()


async def test_models_match_the_migrations(database_url: str) -> None:
    assert await schema_diff(database_url) == []


async def test_upgrade_is_idempotent_and_downgrade_round_trips(tmp_path: pytest.TempPathFactory) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/m.db"
    await asyncio.to_thread(migrate.upgrade, url)
    await asyncio.to_thread(migrate.upgrade, url)
    assert await migrate.current_revision(url) == migrate.head_revision()
    await asyncio.to_thread(migrate.downgrade, url, "base")
    assert await migrate.current_revision(url) is None
    await asyncio.to_thread(migrate.upgrade, url)
    assert await schema_diff(url) == []


async def tables(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            return set(await connection.run_sync(lambda sync: inspect(sync).get_table_names()))
    finally:
        await engine.dispose()


async def test_every_revision_downgrades_and_upgrades_on_postgresql(postgresql_url: str) -> None:
    """On a scratch database of its own (the shared one stays at head for the other tests)."""
    name = f"gw_migrate_{uuid.uuid4().hex[:12]}"
    await postgres_admin_execute(f'CREATE DATABASE "{name}"')
    url = postgres_url(name)
    try:
        await asyncio.to_thread(migrate.upgrade, url)
        assert {"trusted_document", "client_policy", "api_key"} <= await tables(url)
        await asyncio.to_thread(migrate.downgrade, url, "0003")
        assert "api_key" not in await tables(url)
        assert "trusted_document" in await tables(url)
        await asyncio.to_thread(migrate.downgrade, url, "0002")
        assert not {"trusted_document", "client_policy"} & await tables(url)
        await asyncio.to_thread(migrate.downgrade, url, "base")
        assert await tables(url) <= {"alembic_version"}
        await asyncio.to_thread(migrate.upgrade, url)
        assert await migrate.current_revision(url) == migrate.head_revision()
        assert await schema_diff(url) == []
    finally:
        await postgres_admin_execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
