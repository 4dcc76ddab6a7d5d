"""Apply what the payment provider says about an order's payment to the order, exactly once.

Placement, webhooks, refunds and cancellation all end here. Every order transition is a conditional
``UPDATE … WHERE status = <expected>``, so when two of them race (the synchronous answer and a webhook for the
same payment) one wins and the other changes nothing: stock is released once and one confirmation is queued.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from integrations.payments.base import PaymentStatus, ProviderPayment, status_of
from integrations.store.models import Customer, Order, OrderLine, OrderStatus, Payment, Product
from integrations.store.types import utcnow
from resolvers.email.outbox import ORDER_CONFIRMATION, enqueue, order_confirmation
from resolvers.money import format_money
from resolvers.services import Services

PAID_STATUSES = {
    PaymentStatus.SUCCEEDED: OrderStatus.PAID,
    PaymentStatus.PARTIALLY_REFUNDED: OrderStatus.PARTIALLY_REFUNDED,
    PaymentStatus.REFUNDED: OrderStatus.REFUNDED,
}


async def transition(session: AsyncSession, order_id: int, expected: Sequence[OrderStatus], new: OrderStatus) -> bool:
    """Move the order to `new` if it is in one of `expected`; False when another writer got there first."""
    result = await session.execute(
        update(Order)
        .where(col(Order.id) == order_id, col(Order.status).in_([str(status) for status in expected]))
        .values(status=str(new))
        .execution_options(synchronize_session=False)
    )
    return bool(getattr(result, "rowcount", 0) == 1)


async def release_stock(session: AsyncSession, order_id: int) -> None:
    lines = await session.scalars(select(OrderLine).where(col(OrderLine.order_id) == order_id))
    for line in lines:
        await session.execute(
            update(Product)
            .where(col(Product.id) == line.product_id)
            .values(stock=col(Product.stock) + line.quantity)
            .execution_options(synchronize_session=False)
        )


def captured_status(payment: Payment) -> PaymentStatus:
    """SUCCEEDED, PARTIALLY_REFUNDED or REFUNDED, from what the row says has been refunded."""
    return status_of("succeeded", failed=False, amount=payment.amount, amount_refunded=payment.refunded)


async def order_and_payment(services: Services, order_id: int) -> tuple[Order | None, Payment | None]:
    """Fresh reads of an order and its payment, outside the request's session."""
    async with services.sessionmaker() as session:
        order = await session.get(Order, order_id)
        payment = await session.scalar(select(Payment).where(col(Payment.order_id) == order_id))
    return order, payment


def record(payment: Payment, outcome: ProviderPayment) -> None:
    """Copy the provider's view onto the gateway's payment row and release the lease."""
    if outcome.reference:  # a payment the provider refused outright has none
        payment.reference = outcome.reference
    # Refunds only grow: a late or replayed event never lowers what is known (or reserved) to be refunded.
    payment.refunded = min(max(payment.refunded, outcome.amount_refunded), payment.amount)
    if outcome.status in PAID_STATUSES:
        payment.status = captured_status(payment)
    else:
        payment.status = outcome.status
    payment.failure_code = outcome.failure_code
    payment.failure_message = outcome.failure_message
    payment.locked_until = None
    payment.updated_at = utcnow()


async def settle(session: AsyncSession, payment: Payment, outcome: ProviderPayment, *, services: Services) -> None:
    """Record `outcome` and move the order along: paid (and confirmed by email), failed (stock released), or
    refunded; a payment still in flight (processing, needs action) leaves the order PENDING."""
    record(payment, outcome)
    session.add(payment)
    order_id = payment.order_id
    if outcome.status in PAID_STATUSES:
        if await transition(session, order_id, [OrderStatus.PENDING], OrderStatus.PAID):
            await queue_confirmation(session, order_id, services=services)
        target = PAID_STATUSES[payment.status]
        if target is not OrderStatus.PAID:
            await transition(
                session, order_id, [OrderStatus.PAID, OrderStatus.PARTIALLY_REFUNDED, OrderStatus.REFUNDED], target
            )
    elif outcome.status == PaymentStatus.FAILED:
        if await transition(session, order_id, [OrderStatus.PENDING], OrderStatus.PAYMENT_FAILED):
            await release_stock(session, order_id)
    elif outcome.status == PaymentStatus.CANCELLED and await transition(
        session, order_id, [OrderStatus.PENDING], OrderStatus.CANCELLED
    ):
        await release_stock(session, order_id)


async def queue_confirmation(session: AsyncSession, order_id: int, *, services: Services) -> None:
    """Write the order confirmation to the outbox in the caller's transaction."""
    order = await session.get_one(Order, order_id)
    customer = await session.get_one(Customer, order.customer_id)
    rows = await session.execute(
        select(OrderLine, Product)
        .join(Product, col(Product.id) == col(OrderLine.product_id))
        .where(col(OrderLine.order_id) == order_id)
        .order_by(col(OrderLine.id))
    )
    lines = [
        (product.name, line.quantity, format_money(line.unit_price * line.quantity, order.currency))
        for line, product in rows
    ]
    rendered = order_confirmation(
        number=order.number,
        customer_name=customer.name,
        lines=lines,
        total=format_money(order.total, order.currency),
        shop_name=services.shop_name,
    )
    enqueue(
        session,
        kind=ORDER_CONFIRMATION,
        recipient=customer.email,
        subject=rendered.subject,
        text_body=rendered.text_body,
        html_body=rendered.html_body,
        order_id=order_id,
        domain=services.email_domain,
    )
