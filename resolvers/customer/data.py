"""A customer's personal data: gather all of it (export), or anonymise it while keeping the books (erase).

Where a customer's personal data lives: the `customer` row (name, email) and the `email_outbox` rows sent to
them (recipient, bodies that greet them by name, a delivery error that may quote the address). Orders, lines,
payments and refunds hold amounts, statuses and product references, not personal data, so erasure leaves them
exactly as they are; the audit log holds global IDs only. Emails to a customer are the outbox rows of its
orders, and rows without an order addressed to its current address.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import ColumnElement, and_, or_
from sqlmodel import col, select

from integrations.errors import ErrorCode, InputErrors, UserInputError
from integrations.store.models import Customer, EmailStatus, Order, OrderLine, OutboxEmail, Payment, Product
from integrations.store.session import StoreSession
from resolvers.integrity import reporting_duplicates

ERASED_NAME = "Erased customer"
ERASED_TEXT = "(erased)"
UNSENT = "not sent: the recipient's personal data was erased"


def erased_email(customer_id: int) -> str:
    """A unique address that can never be delivered (``.invalid`` is reserved, RFC 2606) nor registered (the
    email validator refuses special-use domains)."""
    return f"erased-{customer_id}@invalid"


def is_erased(customer: Customer) -> bool:
    return customer.id is not None and customer.email == erased_email(customer.id)


@dataclass(frozen=True)
class CustomerData:
    """Everything stored about one customer, rows in id order."""

    customer: Customer
    orders: list[Order]
    lines: list[OrderLine]
    products: dict[int, Product]
    """The products of `lines`, by id (for their SKU and name)."""
    payments: list[Payment]
    emails: list[OutboxEmail]


@dataclass(frozen=True)
class Erasure:
    customer: Customer
    already: bool
    """The customer had been erased before (this call changed nothing of it)."""


def _missing() -> InputErrors:
    return InputErrors([UserInputError("customer_id", "no customer with this id", code=ErrorCode.NOT_FOUND)])


def _emails_of(customer_id: int, email: str) -> ColumnElement[bool]:
    orders = select(col(Order.id)).where(col(Order.customer_id) == customer_id)
    return or_(
        col(OutboxEmail.order_id).in_(orders),
        and_(col(OutboxEmail.order_id).is_(None), col(OutboxEmail.recipient) == email),
    )


async def customer_data(store: StoreSession, customer_id: int) -> CustomerData:
    """All of a customer's data. Raises NOT_FOUND (field `customer_id`) when there is no such customer."""
    customers = await store.scalars(select(Customer).where(col(Customer.id) == customer_id))
    if not customers:
        raise _missing()
    customer = customers[0]
    orders = await store.scalars(select(Order).where(col(Order.customer_id) == customer_id).order_by(col(Order.id)))
    ids = select(col(Order.id)).where(col(Order.customer_id) == customer_id)
    lines = await store.scalars(select(OrderLine).where(col(OrderLine.order_id).in_(ids)).order_by(col(OrderLine.id)))
    products = await store.scalars(
        select(Product).where(
            col(Product.id).in_(select(col(OrderLine.product_id)).where(col(OrderLine.order_id).in_(ids)))
        )
    )
    payments = await store.scalars(select(Payment).where(col(Payment.order_id).in_(ids)).order_by(col(Payment.id)))
    emails = await store.scalars(
        select(OutboxEmail).where(_emails_of(customer_id, customer.email)).order_by(col(OutboxEmail.id))
    )
    return CustomerData(
        customer=customer,
        orders=orders,
        lines=lines,
        products={product.id: product for product in products if product.id is not None},
        payments=payments,
        emails=emails,
    )


def _redact(email: OutboxEmail, recipient: str) -> None:
    """Strip an outbox row of personal data (a row stripped before is left as it is)."""
    email.recipient = recipient
    email.text_body = email.html_body = ERASED_TEXT
    if email.status == EmailStatus.PENDING:
        email.status = EmailStatus.FAILED
        email.locked_until = None
        email.last_error = UNSENT
    elif email.last_error is not None and email.last_error != UNSENT:
        email.last_error = ERASED_TEXT


async def erase_customer(store: StoreSession, customer_id: int) -> Erasure:
    """Anonymise a customer's personal data in one transaction; orders, lines and payments stay untouched.

    The name becomes `ERASED_NAME` and the email `erased_email(id)`; the outbox rows sent to it lose their
    recipient, bodies and delivery error, and those still PENDING become FAILED (never sent). Idempotent: erasing
    again changes nothing. Every committed change announces its tags, so cached responses that hold the
    customer or its emails (its orders' `customer` and `emails` included) are dropped before the answer.
    Raises NOT_FOUND (field `customer_id`) when there is no such customer.
    """
    # Only a row written around the API can hold a placeholder address; then the answer is DUPLICATE, not a 500.
    with reporting_duplicates("customer", "email"):
        async with store.transaction() as session:
            customer = await session.get(Customer, customer_id, populate_existing=True, with_for_update=True)
            if customer is None:
                raise _missing()
            already = is_erased(customer) and customer.name == ERASED_NAME
            found = await session.scalars(select(OutboxEmail).where(_emails_of(customer_id, customer.email)))
            customer.name = ERASED_NAME
            customer.email = erased_email(customer_id)
            for email in found.all():
                _redact(email, customer.email)
    return Erasure(customer=customer, already=already)
