"""Send what the outbox holds: claim due rows with a lease, send each, record the outcome.

A row is due when it is PENDING, its `next_attempt_at` has come and nobody holds a live lease on it
(`locked_until` NULL or past). A worker claims up to `batch_size` due rows in one atomic statement that sets
`locked_until = now + lease` and commits before anything is sent:

* PostgreSQL: ``UPDATE … WHERE id IN (SELECT id … LIMIT n FOR UPDATE SKIP LOCKED) RETURNING …``; concurrent workers
  skip each other's rows instead of waiting, and a row whose lease another worker just took no longer matches.
* SQLite: the same statement without the locking clause; SQLite has one writer at a time, so the statement (the
  first of its transaction) reads and writes under the write lock.

Every later write about a row is conditional on ``locked_until = <the lease we wrote>``: a worker that lost its
lease (it was too slow and another worker took the row over) changes nothing. A worker killed mid-send leaves its
lease to expire; the row is then sent again by whoever claims it, so delivery is at least once and the stable
Message-ID lets receivers drop duplicates. A batch whose lease runs low is renewed before the next send.

`outbox_backlog` reports what waits (for metrics): one aggregate statement.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Table, func, or_, select, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.sql.dml import Update

from integrations.email.base import EmailBackend, EmailDeliveryError, OutgoingEmail
from integrations.store.models import EmailStatus, OutboxEmail
from integrations.store.types import utcnow

logger = logging.getLogger("resolvers.email")

OUTBOX: Table = OutboxEmail.__table__  # type: ignore[attr-defined]
MAX_ERROR_LENGTH = 500
MAX_OUTAGE_DELAY = 30.0
RELEASE_TIMEOUT = 5.0  # seconds a cancelled worker spends releasing the emails it had not started


async def outbox_backlog(
    sessionmaker: async_sessionmaker[AsyncSession], *, clock: Callable[[], datetime] = utcnow
) -> tuple[int, float | None]:
    """Pending emails and the age in seconds of the oldest of them (None when none is pending)."""
    t = OUTBOX.c
    statement = select(func.count(), func.min(t.created_at)).where(t.status == EmailStatus.PENDING)
    async with sessionmaker() as session:
        pending, oldest = (await session.execute(statement)).one()
    if oldest is None:
        return int(pending), None
    return int(pending), max(0.0, (clock() - oldest).total_seconds())


@dataclass(frozen=True)
class ClaimedEmail:
    id: int
    message_id: str
    recipient: str
    subject: str
    text_body: str
    html_body: str
    attempts: int


class OutboxWorker:
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        backend: EmailBackend,
        *,
        sender: str,
        max_attempts: int = 8,
        batch_size: int = 20,
        lease_seconds: float = 60.0,
        backoff_initial: float = 2.0,
        backoff_max: float = 600.0,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        if max_attempts < 1 or batch_size < 1:
            raise ValueError("max_attempts and batch_size must be at least 1")
        if lease_seconds <= 0 or backoff_initial <= 0 or backoff_max < backoff_initial:
            raise ValueError("lease_seconds and backoff_initial must be positive, backoff_max >= backoff_initial")
        self.sessionmaker = sessionmaker
        self.backend = backend
        self.sender = sender
        self.max_attempts = max_attempts
        self.batch_size = batch_size
        self.lease = timedelta(seconds=lease_seconds)
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self._clock = clock
        self._random = random.Random()
        self._stop: asyncio.Event | None = None

    async def run(self, stop: asyncio.Event, poll_interval: float = 1.0) -> None:
        """Deliver until `stop` is set. Store or backend trouble is logged and waited out (with a growing pause, at
        most 30 s); a full batch is followed at once by the next, anything less by a pause of `poll_interval`."""
        if poll_interval <= 0:
            raise ValueError("poll_interval must be positive")
        self._stop = stop
        failures = 0
        try:
            while not stop.is_set():
                try:
                    handled = await self.run_once()
                except Exception as exc:
                    failures += 1
                    delay = min(poll_interval * 2.0 ** min(failures - 1, 16), max(poll_interval, MAX_OUTAGE_DELAY))
                    logger.warning(
                        "email outbox: delivery round failed (%s); retrying in %.2f s",
                        _describe(exc),
                        delay,
                        exc_info=failures == 1,
                    )
                else:
                    if failures:
                        logger.info("email outbox: delivery resumed after %d failed round(s)", failures)
                    failures = 0
                    delay = 0.0 if handled >= self.batch_size else poll_interval
                if delay:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), delay)
                else:
                    await asyncio.sleep(0)
        finally:
            self._stop = None

    async def run_once(self) -> int:
        """Claim up to `batch_size` due emails, send each, record each outcome; return how many were sent or failed.

        Store errors propagate (the claimed rows' leases then expire and the rows are claimed again); backend errors
        are recorded on their row. When `run`'s stop event is set, the email being sent is finished and recorded,
        and the unsent rows are released for other workers. When the task is cancelled (shutdown ran out of time),
        the unsent rows are released too; the one being sent keeps its lease, since whether the peer took it is
        unknown, and is sent again once the lease expires.
        """
        now = self._now()
        lease = now + self.lease
        pending = deque(await self._claim(now, lease))
        handled = 0
        try:
            while pending:
                if self._stop is not None and self._stop.is_set():
                    await self._release([email.id for email in pending], lease)
                    logger.info("email outbox: stopping; released %d unsent email(s)", len(pending))
                    pending.clear()
                    break
                now = self._now()
                if lease - now < self.lease / 2:
                    renewed = now + self.lease
                    kept = set(await self._renew([email.id for email in pending], lease, renewed))
                    if len(kept) < len(pending):
                        logger.warning("email outbox: lost the lease on %d email(s)", len(pending) - len(kept))
                    pending = deque(email for email in pending if email.id in kept)
                    lease = renewed
                    continue
                await self._deliver(pending.popleft(), lease)
                handled += 1
        except asyncio.CancelledError:
            if pending:
                await self._release_on_cancel([email.id for email in pending], lease)
            raise
        return handled

    async def _claim(self, now: datetime, lease: datetime) -> list[ClaimedEmail]:
        """Lease up to `batch_size` due emails in one statement, committed before returning."""
        t = OUTBOX.c
        async with self.sessionmaker() as session, session.begin():
            due = (
                select(t.id)
                .where(
                    t.status == EmailStatus.PENDING.value,
                    t.next_attempt_at <= now,
                    or_(t.locked_until.is_(None), t.locked_until < now),
                )
                .order_by(t.next_attempt_at, t.id)
                .limit(self.batch_size)
            )
            if session.get_bind().dialect.name == "postgresql":
                due = due.with_for_update(skip_locked=True)
            statement = (
                update(OUTBOX)
                .where(t.id.in_(due.scalar_subquery()))
                .values(locked_until=lease)
                .returning(t.id, t.message_id, t.recipient, t.subject, t.text_body, t.html_body, t.attempts)
            )
            rows = (await session.execute(statement)).all()
        claimed = sorted((ClaimedEmail(*row) for row in rows), key=lambda email: email.id)
        if claimed:
            logger.debug("email outbox: claimed %d email(s) until %s", len(claimed), lease.isoformat())
        return claimed

    async def _renew(self, ids: Sequence[int], lease: datetime, renewed: datetime) -> list[int]:
        t = OUTBOX.c
        statement = (
            update(OUTBOX)
            .where(t.id.in_(ids), t.locked_until == lease, t.status == EmailStatus.PENDING.value)
            .values(locked_until=renewed)
            .returning(t.id)
        )
        async with self.sessionmaker() as session, session.begin():
            return list((await session.execute(statement)).scalars().all())

    async def _release(self, ids: Sequence[int], lease: datetime) -> None:
        t = OUTBOX.c
        await self._write(update(OUTBOX).where(t.id.in_(ids), t.locked_until == lease).values(locked_until=None))

    async def _release_on_cancel(self, ids: Sequence[int], lease: datetime) -> None:
        """Best effort, within `RELEASE_TIMEOUT` seconds: a store that does not answer leaves the leases to expire."""
        try:
            # wait_for (its own task), not asyncio.timeout: this task is being cancelled already, and on Python 3.11
            # asyncio.timeout would then raise CancelledError instead of TimeoutError.
            await asyncio.wait_for(self._release(ids, lease), RELEASE_TIMEOUT)
        except Exception as exc:  # TimeoutError or a store error: the leases expire instead
            logger.warning("email outbox: cancelled; could not release %d email(s): %s", len(ids), _describe(exc))
        else:
            logger.info("email outbox: cancelled; released %d unsent email(s)", len(ids))

    async def _deliver(self, email: ClaimedEmail, lease: datetime) -> None:
        message = OutgoingEmail(
            message_id=email.message_id,
            sender=self.sender,
            recipient=email.recipient,
            subject=email.subject,
            text_body=email.text_body,
            html_body=email.html_body,
        )
        try:
            await self._send(message)
        except EmailDeliveryError as exc:
            await self._record_failure(email, lease, exc.message, permanent=exc.permanent)
        except Exception as exc:  # a backend's bug must not stop the other emails
            logger.exception("email outbox: the backend failed unexpectedly on email %d", email.id)
            await self._record_failure(email, lease, _describe(exc), permanent=False)
        else:
            await self._record_success(email, lease)

    async def _send(self, message: OutgoingEmail) -> None:
        """`backend.send` in a task of its own, so that cancelling the worker is prompt: a backend may wind down
        slowly once cancelled (aiosmtplib's client sends QUIT and waits for a peer still busy with the message), and
        the worker does not wait for that."""
        sending = asyncio.ensure_future(self.backend.send(message))
        try:
            await asyncio.shield(sending)
        except asyncio.CancelledError:
            sending.cancel()
            sending.add_done_callback(_consume_outcome)
            raise

    async def _record_success(self, email: ClaimedEmail, lease: datetime) -> None:
        changed = await self._write(
            self._ours(email, lease).values(
                status=EmailStatus.SENT.value, sent_at=self._now(), attempts=email.attempts + 1, locked_until=None
            )
        )
        if changed:
            logger.info("email outbox: sent email %d %s", email.id, email.message_id)
        else:
            logger.warning("email outbox: sent email %d %s after losing its lease", email.id, email.message_id)

    async def _record_failure(self, email: ClaimedEmail, lease: datetime, error: str, *, permanent: bool) -> None:
        attempts = email.attempts + 1
        values: dict[str, Any] = {
            "attempts": attempts,
            "last_error": error[:MAX_ERROR_LENGTH],
            "locked_until": None,
        }
        give_up = permanent or attempts >= self.max_attempts
        if give_up:
            values["status"] = EmailStatus.FAILED.value
        else:
            values["next_attempt_at"] = self._now() + timedelta(seconds=self.backoff(attempts))
        await self._write(self._ours(email, lease).values(**values))
        if give_up:
            reason = "permanent error" if permanent else f"{attempts} attempts"
            logger.error("email outbox: gave up on email %d %s (%s): %s", email.id, email.message_id, reason, error)
        else:
            logger.warning("email outbox: attempt %d of email %d failed, will retry: %s", attempts, email.id, error)

    def backoff(self, attempts: int) -> float:
        """Seconds to wait after the `attempts`-th failure: doubling from `backoff_initial`, at most `backoff_max`,
        with jitter (50 to 100 % of that) so emails that failed together do not retry together."""
        ceiling = min(self.backoff_max, self.backoff_initial * 2.0 ** min(attempts - 1, 64))
        return ceiling * (0.5 + 0.5 * self._random.random())

    def _ours(self, email: ClaimedEmail, lease: datetime) -> Update:
        t = OUTBOX.c
        return update(OUTBOX).where(t.id == email.id, t.locked_until == lease, t.status == EmailStatus.PENDING.value)

    async def _write(self, statement: Update) -> int:
        async with self.sessionmaker() as session, session.begin():
            result = await session.execute(statement)
            return int(getattr(result, "rowcount", 0))

    def _now(self) -> datetime:
        now = self._clock()
        if now.tzinfo is None:
            raise ValueError("the outbox clock must return timezone-aware datetimes")
        return now


def _consume_outcome(task: asyncio.Future[None]) -> None:
    """An abandoned send's outcome is of no interest; retrieving it keeps asyncio from logging it as unretrieved."""
    if not task.cancelled():
        task.exception()


def _describe(exc: BaseException) -> str:
    """One line: the exception's type and message (a database error's own message, without the SQL)."""
    text = " ".join(str(exc.orig if isinstance(exc, DBAPIError) else exc).split())
    return f"{type(exc).__name__}: {text}"[:MAX_ERROR_LENGTH] if text else type(exc).__name__
