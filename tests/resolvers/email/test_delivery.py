"""The outbox worker against the real stores (SQLite and PostgreSQL) and a real SMTP server (aiosmtpd).

Time is the worker's injectable clock, moved by the tests: backoffs and leases pass without sleeping.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlmodel import col

from integrations.email import EmailBackend, OutgoingEmail, email_backend
from integrations.store import migrate
from integrations.store.engine import create_engine, create_sessionmaker
from integrations.store.models import EmailStatus, OutboxEmail
from resolvers.email.delivery import OutboxWorker
from tests.resolvers.email.conftest import Clock, enqueue_emails
from tests.support.smtp import SMTPServer

SENDER = "Shop <shop@example.com>"
LEASE = 60.0


async def outbox(sessionmaker: async_sessionmaker[AsyncSession]) -> list[OutboxEmail]:
    async with sessionmaker() as session:
        return list((await session.scalars(select(OutboxEmail).order_by(col(OutboxEmail.id)))).all())


def worker(
    sessionmaker: async_sessionmaker[AsyncSession], backend: EmailBackend, clock: Clock, **options: Any
) -> OutboxWorker:
    return OutboxWorker(sessionmaker, backend, sender=SENDER, clock=clock, lease_seconds=LEASE, **options)


class CallbackBackend:
    """Runs `before` (which may raise, hang or move the clock) and then, if given, sends through `inner`."""

    def __init__(self, before: Callable[[OutgoingEmail], Awaitable[None]], inner: EmailBackend | None = None) -> None:
        self.before = before
        self.inner = inner
        self.calls: list[str] = []

    async def send(self, message: OutgoingEmail) -> None:
        self.calls.append(message.message_id)
        await self.before(message)
        if self.inner is not None:
            await self.inner.send(message)

    async def aclose(self) -> None:
        pass


async def test_a_pending_email_is_delivered_and_marked_sent(
    sessionmaker: async_sessionmaker[AsyncSession], smtp_server: SMTPServer, clock: Clock
) -> None:
    [message_id] = await enqueue_emails(sessionmaker, 1)
    assert await worker(sessionmaker, email_backend(smtp_server.url()), clock).run_once() == 1

    [received] = smtp_server.received
    assert received.message_id == message_id
    assert received.mail_from == "shop@example.com"
    assert received.rcpt_tos == ["user0@example.com"]
    assert received.message["Subject"] == "Email 0"
    [row] = await outbox(sessionmaker)
    assert (row.status, row.attempts, row.sent_at, row.locked_until) == (EmailStatus.SENT, 1, clock.now, None)
    assert await worker(sessionmaker, email_backend(smtp_server.url()), clock).run_once() == 0  # nothing left


async def test_smtp_down_then_back(
    sessionmaker: async_sessionmaker[AsyncSession], smtp_server: SMTPServer, clock: Clock
) -> None:
    [message_id] = await enqueue_emails(sessionmaker, 1)
    smtp = worker(sessionmaker, email_backend(smtp_server.url()), clock, backoff_initial=2.0)
    smtp_server.stop()

    assert await smtp.run_once() == 1
    [row] = await outbox(sessionmaker)
    assert (row.status, row.attempts, row.locked_until, row.sent_at) == (EmailStatus.PENDING, 1, None, None)
    assert row.last_error is not None
    assert "connect" in row.last_error.lower()
    assert clock.now + timedelta(seconds=1) <= row.next_attempt_at <= clock.now + timedelta(seconds=2)
    assert await smtp.run_once() == 0  # not due yet: no hammering of a server that is down

    smtp_server.start()  # the same port
    assert await smtp.run_once() == 0
    clock.advance(2)
    assert await smtp.run_once() == 1
    [row] = await outbox(sessionmaker)
    assert (row.status, row.attempts, row.sent_at, row.locked_until) == (EmailStatus.SENT, 2, clock.now, None)
    assert smtp_server.handler.message_ids() == [message_id]


async def test_after_max_attempts_the_email_fails(
    sessionmaker: async_sessionmaker[AsyncSession], smtp_server: SMTPServer, clock: Clock
) -> None:
    await enqueue_emails(sessionmaker, 1)
    smtp_server.stop()
    smtp = worker(sessionmaker, email_backend(smtp_server.url()), clock, max_attempts=3, backoff_max=10.0)
    delays = []
    for attempt in (1, 2, 3):
        assert await smtp.run_once() == 1
        [row] = await outbox(sessionmaker)
        assert row.attempts == attempt
        if attempt < 3:
            assert row.status == EmailStatus.PENDING
            delays.append((row.next_attempt_at - clock.now).total_seconds())
            clock.advance(10)
    assert 1 <= delays[0] <= 2 <= delays[1] <= 4  # doubling, with jitter
    assert row.status == EmailStatus.FAILED
    assert row.last_error is not None
    assert row.locked_until is None
    clock.advance(3600)
    assert await smtp.run_once() == 0  # failed emails stay failed


async def test_a_permanent_refusal_fails_at_once(
    sessionmaker: async_sessionmaker[AsyncSession], smtp_server: SMTPServer, clock: Clock
) -> None:
    await enqueue_emails(sessionmaker, 1)
    smtp_server.handler.refuse_recipients = "550 5.1.1 No such user"
    assert await worker(sessionmaker, email_backend(smtp_server.url()), clock).run_once() == 1
    [row] = await outbox(sessionmaker)
    assert (row.status, row.attempts) == (EmailStatus.FAILED, 1)
    assert row.last_error is not None
    assert "550 5.1.1 No such user" in row.last_error


async def test_a_failing_backend_never_leaks_the_smtp_password(
    sessionmaker: async_sessionmaker[AsyncSession], clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    await enqueue_emails(sessionmaker, 1)
    caplog.set_level(logging.DEBUG, logger="resolvers.email")
    with SMTPServer(credentials={"mailer": "the right one"}) as server:
        backend = email_backend(server.url(userinfo="mailer:hunter2%21"))
        assert await worker(sessionmaker, backend, clock).run_once() == 1
    [row] = await outbox(sessionmaker)
    assert row.status == EmailStatus.PENDING
    assert row.last_error is not None
    assert "535" in row.last_error
    assert "attempt 1 of email" in caplog.text
    for secret in ("hunter2", "hunter2!", "hunter2%21"):
        assert secret not in row.last_error
        assert secret not in caplog.text


async def test_an_unexpected_backend_error_is_recorded_as_temporary(
    sessionmaker: async_sessionmaker[AsyncSession], clock: Clock
) -> None:
    await enqueue_emails(sessionmaker, 2)

    async def boom(_: OutgoingEmail) -> None:
        raise RuntimeError("a bug in a backend")

    assert await worker(sessionmaker, CallbackBackend(boom), clock).run_once() == 2
    for row in await outbox(sessionmaker):
        assert (row.status, row.attempts, row.locked_until) == (EmailStatus.PENDING, 1, None)
        assert row.last_error == "RuntimeError: a bug in a backend"


async def test_two_workers_deliver_each_email_exactly_once(
    sessionmaker: async_sessionmaker[AsyncSession], store_url: str, smtp_server: SMTPServer, clock: Clock
) -> None:
    """Two workers on engines of their own (as two processes would be) drain 30 due emails concurrently."""
    message_ids = await enqueue_emails(sessionmaker, 30)
    other_engine = create_engine(store_url)
    handled: Counter[str] = Counter()

    async def drain(name: str, worker: OutboxWorker) -> None:
        while count := await worker.run_once():
            handled[name] += count
            await asyncio.sleep(0)

    try:
        first = worker(sessionmaker, email_backend(smtp_server.url()), clock, batch_size=4)
        second = worker(create_sessionmaker(other_engine), email_backend(smtp_server.url()), clock, batch_size=4)
        await asyncio.gather(drain("first", first), drain("second", second))
    finally:
        await other_engine.dispose()

    received = smtp_server.handler.message_ids()
    assert sorted(received) == sorted(message_ids)  # every email, none twice
    assert handled["first"] + handled["second"] == 30
    assert handled["first"] > 0
    assert handled["second"] > 0  # both took part
    rows = await outbox(sessionmaker)
    assert {(row.status, row.attempts) for row in rows} == {(EmailStatus.SENT, 1)}


async def test_a_worker_killed_mid_send_leaves_the_email_to_another_after_its_lease(
    sessionmaker: async_sessionmaker[AsyncSession], smtp_server: SMTPServer, clock: Clock
) -> None:
    [message_id] = await enqueue_emails(sessionmaker, 1)
    sending = asyncio.Event()

    async def hang(_: OutgoingEmail) -> None:
        sending.set()
        await asyncio.Event().wait()

    doomed = asyncio.create_task(worker(sessionmaker, CallbackBackend(hang), clock).run_once())
    await sending.wait()
    doomed.cancel()  # killed mid-send
    with pytest.raises(asyncio.CancelledError):
        await doomed
    [row] = await outbox(sessionmaker)
    assert (row.status, row.attempts, row.locked_until) == (
        EmailStatus.PENDING,
        0,
        clock.now + timedelta(seconds=LEASE),
    )

    rescuer = worker(sessionmaker, email_backend(smtp_server.url()), clock)
    clock.advance(LEASE - 1)
    assert await rescuer.run_once() == 0  # the lease still holds
    clock.advance(2)
    assert await rescuer.run_once() == 1
    assert smtp_server.handler.message_ids() == [message_id]
    [row] = await outbox(sessionmaker)
    assert (row.status, row.attempts, row.locked_until) == (EmailStatus.SENT, 1, None)


async def test_a_worker_that_lost_its_lease_changes_nothing(
    sessionmaker: async_sessionmaker[AsyncSession], smtp_server: SMTPServer, clock: Clock
) -> None:
    await enqueue_emails(sessionmaker, 1)
    slow = worker(sessionmaker, email_backend(smtp_server.url()), clock)
    lease = clock.now + timedelta(seconds=LEASE)
    [claimed] = await slow._claim(clock.now, lease)  # claimed, then stalled past its lease

    clock.advance(LEASE + 1)
    assert await worker(sessionmaker, email_backend(smtp_server.url()), clock).run_once() == 1
    await slow._record_failure(claimed, lease, "too late", permanent=True)  # the stalled worker wakes up
    await slow._record_success(claimed, lease)
    [row] = await outbox(sessionmaker)
    assert (row.status, row.attempts, row.last_error, row.sent_at) == (EmailStatus.SENT, 1, None, clock.now)


async def test_a_slow_batch_renews_its_lease_so_no_other_worker_sends_twice(
    sessionmaker: async_sessionmaker[AsyncSession], smtp_server: SMTPServer, clock: Clock
) -> None:
    """Each send takes 40 s (of a 60 s lease). A second worker polls during every send: without renewal it would
    take over the rest of the batch once the first lease ran out."""
    await enqueue_emails(sessionmaker, 3)
    other = worker(sessionmaker, email_backend(smtp_server.url()), clock)
    other_handled = []

    async def slow_send(_: OutgoingEmail) -> None:
        clock.advance(40)
        other_handled.append(await other.run_once())

    slow = worker(sessionmaker, CallbackBackend(slow_send, email_backend(smtp_server.url())), clock, batch_size=3)
    assert await slow.run_once() == 3
    assert other_handled == [0, 0, 0]
    assert len(smtp_server.received) == 3
    assert len(set(smtp_server.handler.message_ids())) == 3
    assert {row.status for row in await outbox(sessionmaker)} == {EmailStatus.SENT}


async def test_run_delivers_and_stops_promptly(
    sessionmaker: async_sessionmaker[AsyncSession], smtp_server: SMTPServer, clock: Clock
) -> None:
    stop = asyncio.Event()
    running = asyncio.create_task(
        worker(sessionmaker, email_backend(smtp_server.url()), clock).run(stop, poll_interval=0.02)
    )
    [message_id] = await enqueue_emails(sessionmaker, 1)
    for _ in range(250):
        if smtp_server.received:
            break
        await asyncio.sleep(0.02)
    assert smtp_server.handler.message_ids() == [message_id]

    stop.set()
    await asyncio.wait_for(running, timeout=1)
    idle_stop = asyncio.Event()
    idle = asyncio.create_task(
        worker(sessionmaker, email_backend(smtp_server.url()), clock).run(idle_stop, poll_interval=3600)
    )
    await asyncio.sleep(0.05)
    idle_stop.set()
    await asyncio.wait_for(idle, timeout=1)  # not after the hour-long poll interval


async def test_stopping_mid_batch_releases_the_unsent_emails(
    sessionmaker: async_sessionmaker[AsyncSession], smtp_server: SMTPServer, clock: Clock
) -> None:
    await enqueue_emails(sessionmaker, 3)
    stop = asyncio.Event()

    async def stop_after_this_one(_: OutgoingEmail) -> None:
        stop.set()

    backend = CallbackBackend(stop_after_this_one, email_backend(smtp_server.url()))
    await asyncio.wait_for(worker(sessionmaker, backend, clock).run(stop), timeout=5)
    rows = await outbox(sessionmaker)
    assert [(row.status, row.attempts, row.locked_until) for row in rows] == [
        (EmailStatus.SENT, 1, None),
        (EmailStatus.PENDING, 0, None),  # free for any other worker right away
        (EmailStatus.PENDING, 0, None),
    ]


async def test_run_survives_a_store_outage(
    tmp_path: Path, smtp_server: SMTPServer, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    """The store is unreachable (its directory does not exist yet): `run` logs and waits, then delivers once the
    store is there."""
    caplog.set_level(logging.INFO, logger="resolvers.email")
    url = f"sqlite+aiosqlite:///{tmp_path / 'later' / 'gateway.db'}"
    engine: AsyncEngine = create_engine(url)
    sessionmaker = create_sessionmaker(engine)
    stop = asyncio.Event()
    running = asyncio.create_task(
        worker(sessionmaker, email_backend(smtp_server.url()), clock).run(stop, poll_interval=0.01)
    )
    try:
        for _ in range(250):
            if "delivery round failed" in caplog.text:
                break
            await asyncio.sleep(0.02)
        assert "delivery round failed (OperationalError: unable to open database file)" in caplog.text
        assert not running.done()

        (tmp_path / "later").mkdir()
        await asyncio.to_thread(migrate.upgrade, url)
        [message_id] = await enqueue_emails(sessionmaker, 1)
        for _ in range(250):
            [row] = await outbox(sessionmaker)
            if row.status == EmailStatus.SENT and "delivery resumed" in caplog.text:
                break
            await asyncio.sleep(0.02)
        assert row.status == EmailStatus.SENT
        assert "delivery resumed" in caplog.text
        assert smtp_server.handler.message_ids() == [message_id]
    finally:
        stop.set()
        await asyncio.wait_for(running, timeout=5)
        await engine.dispose()
