"""Apply a verified Stripe event to the store, exactly once per event id.

The event id is recorded in the same transaction as the change it causes, so a replayed or duplicated
delivery changes nothing. Events about payments the gateway does not know are recorded and ignored.
"""

from __future__ import annotations

import logging
from enum import StrEnum
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select

from integrations.payments.base import ProviderPayment
from integrations.payments.stripe import payment_from_charge, payment_from_intent
from integrations.store.models import Payment, WebhookEvent
from resolvers.order.settlement import settle
from resolvers.payment.cache import forget
from resolvers.services import Services

logger = logging.getLogger("resolvers.payment.webhooks")

HANDLED = frozenset({"payment_intent.succeeded", "payment_intent.payment_failed", "charge.refunded"})


class Outcome(StrEnum):
    APPLIED = "applied"
    DUPLICATE = "duplicate"
    IGNORED = "ignored"
    UNKNOWN_PAYMENT = "unknown_payment"


class MalformedEvent(ValueError):
    """The (authentic) event lacks what its type promises; nothing was changed."""


async def apply_stripe_event(services: Services, event: dict[str, Any]) -> Outcome:
    event_id, event_type = event.get("id"), event.get("type")
    if not isinstance(event_id, str) or not isinstance(event_type, str) or not event_id:
        raise MalformedEvent("an event needs an id and a type")
    if event_type not in HANDLED:
        return Outcome.IGNORED
    outcome = _provider_view(event_type, event)
    try:
        async with services.sessionmaker() as session, session.begin():
            session.add(WebhookEvent(provider="stripe", event_id=event_id, type=event_type))
            await session.flush()  # a duplicate delivery stops here
            payment = await session.scalar(
                select(Payment).where(col(Payment.reference) == outcome.reference).with_for_update()
            )
            if payment is None:
                logger.info("webhook %s (%s) is about an unknown payment; ignored", event_id, event_type)
                return Outcome.UNKNOWN_PAYMENT
            await settle(session, payment, outcome, services=services)
    except IntegrityError:
        return Outcome.DUPLICATE
    await forget(services.cache, payment.provider, payment.reference)
    return Outcome.APPLIED


def _provider_view(event_type: str, event: dict[str, Any]) -> ProviderPayment:
    data = event.get("data")
    obj = data.get("object") if isinstance(data, dict) else None
    if not isinstance(obj, dict):
        raise MalformedEvent("the event has no data.object")
    try:
        return payment_from_charge(obj) if event_type == "charge.refunded" else payment_from_intent(obj)
    except (KeyError, TypeError, ValueError) as exc:
        raise MalformedEvent(f"the {event_type} object is incomplete") from exc
