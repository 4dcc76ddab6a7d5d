"""A payment's lease: while `payment.locked_until` is in the future, one request owns the provider conversation.

Taken with a conditional UPDATE (so exactly one contender wins on every database) and released when the
conversation ends; a request that dies holding it simply lets it expire.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import update
from sqlmodel import col

from integrations.store.models import Payment
from integrations.store.types import utcnow
from resolvers.services import Services


async def take(services: Services, payment_id: int | None) -> bool:
    """Claim the payment if nobody holds a live lease on it; False when another request does."""
    now = utcnow()
    async with services.sessionmaker() as session, session.begin():
        result = await session.execute(
            update(Payment)
            .where(
                col(Payment.id) == payment_id,
                (col(Payment.locked_until).is_(None)) | (col(Payment.locked_until) <= now),
            )
            .values(locked_until=now + timedelta(seconds=services.payment_lease))
            .execution_options(synchronize_session=False)
        )
    return bool(getattr(result, "rowcount", 0) == 1)


async def release(services: Services, payment_id: int | None) -> None:
    async with services.sessionmaker() as session, session.begin():
        await session.execute(
            update(Payment)
            .where(col(Payment.id) == payment_id)
            .values(locked_until=None)
            .execution_options(synchronize_session=False)
        )
