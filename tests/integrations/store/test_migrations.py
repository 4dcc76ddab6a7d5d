"""Alembic is the only way the schema is made: idempotent upgrades, clean downgrades, models in sync."""

from __future__ import annotations

import asyncio

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.engine import Connection

from integrations.store import migrate
from integrations.store.engine import create_engine
from integrations.store.models import metadata


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
