"""refundOrder and cancelOrder.

A refund first *reserves* its amount on the payment row (``refunded = refunded + n WHERE refunded = <seen>
AND refunded + n <= amount``), so concurrent refunds can never add up to more than was captured, then asks
the provider with an idempotency key derived from that reservation, and gives the reservation back if the
provider did not refund. Cancelling voids an order: whatever was paid is refunded (or the pending payment is
cancelled at the provider) and the stock is put back.
"""

from __future__ import annotations

import hashlib

from sqlalchemy import update
from sqlmodel import col

from integrations.errors import ErrorCode, GatewayError, InputErrors, UserInputError
from integrations.payments.base import PaymentStatus
from integrations.store.models import Order, OrderStatus, Payment
from integrations.store.types import utcnow
from resolvers import validation
from resolvers.order.settlement import (
    PAID_STATUSES,
    captured_status,
    order_and_payment,
    release_stock,
    settle,
    transition,
)
from resolvers.payment import lease
from resolvers.payment.cache import forget
from resolvers.services import Services

REFUNDABLE = (OrderStatus.PAID, OrderStatus.PARTIALLY_REFUNDED)
MAX_RESERVATION_ATTEMPTS = 5


async def refund_order(services: Services, order_id: int, amount: int | None) -> Order:
    """Refund `amount` (minor units; None = everything not yet refunded) of a paid order."""
    if amount is not None:
        validation.integer("amount", amount, minimum=1)
    for _ in range(MAX_RESERVATION_ATTEMPTS):
        order, payment = await _load(services, order_id)
        if order.status not in REFUNDABLE or payment is None or payment.reference is None:
            raise _error("order_id", f"an order in status {order.status} cannot be refunded", ErrorCode.INVALID_STATE)
        remaining = payment.amount - payment.refunded
        wanted = remaining if amount is None else amount
        if wanted > remaining:
            raise _error(
                "amount",
                f"amount exceeds what is left to refund ({remaining} of {payment.amount} captured)",
                ErrorCode.REFUND_EXCEEDS_CAPTURED,
            )
        if wanted <= 0:
            raise _error("order_id", "the order is already fully refunded", ErrorCode.INVALID_STATE)
        if await _reserve(services, payment, wanted):
            break
    else:
        raise _error("order_id", "another refund of this order is in progress; try again", ErrorCode.INVALID_STATE)

    key = hashlib.sha256(f"refund:{payment.id}:{payment.refunded}:{wanted}".encode()).hexdigest()
    try:
        await services.payments.refund_payment(payment.reference, wanted, idempotency_key=key)
    except BaseException:
        await _give_back(services, payment, wanted)
        raise
    async with services.sessionmaker() as session, session.begin():
        row = await session.get_one(Payment, payment.id, with_for_update=True, populate_existing=True)
        row.status = captured_status(row)
        row.updated_at = utcnow()
        await transition(session, order_id, REFUNDABLE, PAID_STATUSES[row.status])
    await forget(services.cache, payment.provider, payment.reference)
    return (await _load(services, order_id))[0]


async def cancel_order(services: Services, order_id: int) -> Order:
    """Void the order: refund or cancel its payment and put the stock back. Cancelling twice is a no-op."""
    order, payment = await _load(services, order_id)
    if order.status == OrderStatus.CANCELLED:
        return order
    if order.status in REFUNDABLE and payment is not None and payment.refunded < payment.amount:
        await refund_order(services, order_id, None)
        order, payment = await _load(services, order_id)
    if order.status in (OrderStatus.REFUNDED, OrderStatus.PAYMENT_FAILED, *REFUNDABLE):
        async with services.sessionmaker() as session, session.begin():
            # A failed order's stock was released when it failed; every other one gives its stock back now.
            if await transition(session, order_id, [order.status], OrderStatus.CANCELLED) and (
                order.status != OrderStatus.PAYMENT_FAILED
            ):
                await release_stock(session, order_id)
    elif order.status == OrderStatus.PENDING and payment is not None:
        await _cancel_pending(services, order_id, payment)
    return (await _load(services, order_id))[0]


async def _cancel_pending(services: Services, order_id: int, payment: Payment) -> None:
    if not await lease.take(services, payment.id):
        raise _error("order_id", "the order's payment is in progress; try again shortly", ErrorCode.INVALID_STATE)
    if payment.reference is None:  # the provider never saw it: nothing to cancel there
        async with services.sessionmaker() as session, session.begin():
            row = await session.get_one(Payment, payment.id, with_for_update=True, populate_existing=True)
            row.status = PaymentStatus.CANCELLED
            row.locked_until = None
            row.updated_at = utcnow()
            if await transition(session, order_id, [OrderStatus.PENDING], OrderStatus.CANCELLED):
                await release_stock(session, order_id)
        return
    key = hashlib.sha256(f"cancel:{payment.idempotency_key}".encode()).hexdigest()
    try:
        outcome = await services.payments.cancel_payment(payment.reference, idempotency_key=key)
    finally:
        await lease.release(services, payment.id)
    async with services.sessionmaker() as session, session.begin():
        row = await session.get_one(Payment, payment.id, with_for_update=True, populate_existing=True)
        await settle(session, row, outcome, services=services)
    await forget(services.cache, payment.provider, payment.reference)


async def _load(services: Services, order_id: int) -> tuple[Order, Payment | None]:
    order, payment = await order_and_payment(services, order_id)
    if order is None:
        raise _error("order_id", "no order with this id", ErrorCode.NOT_FOUND)
    return order, payment


async def _reserve(services: Services, payment: Payment, amount: int) -> bool:
    async with services.sessionmaker() as session, session.begin():
        result = await session.execute(
            update(Payment)
            .where(
                col(Payment.id) == payment.id,
                col(Payment.refunded) == payment.refunded,
                col(Payment.refunded) + amount <= col(Payment.amount),
            )
            .values(refunded=col(Payment.refunded) + amount, updated_at=utcnow())
            .execution_options(synchronize_session=False)
        )
    return bool(getattr(result, "rowcount", 0) == 1)


async def _give_back(services: Services, payment: Payment, amount: int) -> None:
    async with services.sessionmaker() as session, session.begin():
        await session.execute(
            update(Payment)
            .where(col(Payment.id) == payment.id)
            .values(refunded=col(Payment.refunded) - amount, updated_at=utcnow())
            .execution_options(synchronize_session=False)
        )


def _error(field: str, message: str, code: ErrorCode) -> GatewayError:
    return InputErrors([UserInputError(field, message, code=code)])
