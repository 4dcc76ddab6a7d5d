from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from integrations.store.engine import create_sessionmaker
from integrations.store.types import utcnow
from resolvers.email.outbox import enqueue
from tests.support.smtp import SMTPServer


async def enqueue_emails(sessionmaker: async_sessionmaker[AsyncSession], count: int) -> list[str]:
    """Commit `count` emails; return their Message-IDs in id order."""
    async with sessionmaker() as session, session.begin():
        rows = [
            enqueue(
                session,
                kind="test",
                recipient=f"user{n}@example.com",
                subject=f"Email {n}",
                text_body=f"Hello {n}\n",
                html_body=f"<p>Hello {n}</p>",
            )
            for n in range(count)
        ]
    return [row.message_id for row in rows]


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
