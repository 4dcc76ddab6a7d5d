"""Fixtures of the command-line tests: `gateway ARGS...` run in process, through the real entry point.

`main()` runs its own event loop (`asyncio.run`), so the commands run in a worker thread; DATABASE_URL comes from
the environment, as for the real command.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from gateway.cli import main
from integrations.store.engine import create_sessionmaker


@dataclass
class Result:
    code: int
    out: str
    err: str


Gateway = Callable[..., Awaitable[Result]]


@pytest.fixture
def gateway(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Gateway:
    """`gateway ARGS...` against DATABASE_URL (the test's store unless given), in a directory of its own."""
    monkeypatch.chdir(tmp_path)

    async def run(*args: str, database_url: str | None = None) -> Result:
        if database_url is not None:
            monkeypatch.setenv("DATABASE_URL", database_url)
        capsys.readouterr()
        code = await asyncio.to_thread(main, list(args))
        out, err = capsys.readouterr()
        return Result(code, out, err)

    return run


@pytest.fixture
def store_env(store_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("DATABASE_URL", store_url)
    return store_url


@pytest.fixture
def sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return create_sessionmaker(engine)
