from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from integrations.store.engine import create_sessionmaker
from integrations.store.types import utcnow
from tests.support.smtp import SMTPServer


class Clock:
    """The outbox worker's time, moved by the test instead of waited for."""

    def __init__(self) -> None:
        # Ahead of real time, so emails enqueued during the test (stamped with real time) are already due.
        self.now = utcnow() + timedelta(minutes=1)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return create_sessionmaker(engine)


@pytest.fixture
def smtp_server() -> Iterator[SMTPServer]:
    """A real SMTP server (aiosmtpd) on 127.0.0.1 and a free port."""
    with SMTPServer() as server:
        yield server
