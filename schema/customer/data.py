"""`exportCustomerData` and `eraseCustomer`: a customer's right of access and right to erasure.

The export is a mutation, not a query: handing out everything about a person is an act to be recorded (only
mutations are audited), its result must never be cached or fetched by a GET, and clients run it on purpose,
not as part of a page's reads.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import strawberry
from strawberry.scalars import JSON

from integrations.store import models
from resolvers.access.rules import CUSTOMERS_ERASE, CUSTOMERS_EXPORT, ROLE_CUSTOMER, act_for_customer
from resolvers.customer.data import CustomerData, customer_data, erase_customer
from schema.context import Info
from schema.customer.types import Customer
from schema.errors import INPUT_ERRORS, UserError, user_errors
from schema.ids import decode_typed_id, encode_id
from schema.permissions import requires

EXPORT_FORMAT = "customer-data/1"


@strawberry.type(description="Result of exportCustomerData.")
class ExportCustomerDataPayload:
    data: JSON | None = strawberry.field(
        description='The customer\'s data as one JSON object (`format` "customer-data/1"): `customer` (profile), '
        "`orders` with their `lines` and `payment` (status, amounts, refunded; never card data), and `emails` "
        "sent to the customer (subject, status, timestamps). Null if userErrors is not empty."
    )
    user_errors: list[UserError] = strawberry.field(description="Why nothing was exported; empty on success.")


@strawberry.type(description="Result of eraseCustomer.")
class EraseCustomerPayload:
    customer: Customer | None = strawberry.field(
        description="The anonymised customer, or null if userErrors is not empty."
    )
    already_erased: bool = strawberry.field(description="The customer had been erased before; nothing changed.")
    user_errors: list[UserError] = strawberry.field(description="Why nothing was erased; empty on success.")


@strawberry.type
class CustomerDataMutation:
    @strawberry.mutation(
        description="Everything stored about a customer, as JSON (a customer may export its own).",
        directives=[requires(CUSTOMERS_EXPORT, ROLE_CUSTOMER)],
    )
    async def export_customer_data(self, info: Info, customer_id: strawberry.ID) -> ExportCustomerDataPayload:
        try:
            pk = decode_typed_id(customer_id, "Customer", field="customer_id")
            act_for_customer(info.context.principal, pk, CUSTOMERS_EXPORT, "export a customer's data")
            found = await customer_data(info.context.store, pk)
        except INPUT_ERRORS as error:
            return ExportCustomerDataPayload(data=None, user_errors=user_errors(error))
        return ExportCustomerDataPayload(data=JSON(render(found)), user_errors=[])

    @strawberry.mutation(
        description="Anonymise a customer: name and email are replaced, the emails sent to it lose recipient and "
        "bodies; orders, payments and refunds stay as they are. Erasing an erased customer changes nothing.",
        directives=[requires(CUSTOMERS_ERASE)],
    )
    async def erase_customer(self, info: Info, customer_id: strawberry.ID) -> EraseCustomerPayload:
        try:
            pk = decode_typed_id(customer_id, "Customer", field="customer_id")
            erasure = await erase_customer(info.context.store, pk)
        except INPUT_ERRORS as error:
            return EraseCustomerPayload(customer=None, already_erased=False, user_errors=user_errors(error))
        return EraseCustomerPayload(
            customer=Customer.from_row(erasure.customer), already_erased=erasure.already, user_errors=[]
        )


def render(found: CustomerData) -> dict[str, Any]:
    """The export document: global IDs, amounts in minor units with their currency, UTC timestamps."""
    customer = found.customer
    assert customer.id is not None
    lines: dict[int, list[dict[str, Any]]] = {}
    for line in found.lines:
        product = found.products[line.product_id]
        lines.setdefault(line.order_id, []).append(
            {
                "product": {"id": encode_id("Product", line.product_id), "sku": product.sku, "name": product.name},
                "quantity": line.quantity,
                "unitPrice": line.unit_price,
                "subtotal": line.unit_price * line.quantity,
            }
        )
    payments = {payment.order_id: payment for payment in found.payments}
    return {
        "format": EXPORT_FORMAT,
        "customer": {
            "id": encode_id("Customer", customer.id),
            "name": customer.name,
            "email": customer.email,
            "createdAt": _time(customer.created_at),
        },
        "orders": [
            {
                "id": encode_id("Order", order.id or 0),
                "number": order.number,
                "status": str(order.status),
                "currency": order.currency,
                "total": order.total,
                "createdAt": _time(order.created_at),
                "lines": lines.get(order.id or 0, []),
                "payment": _payment(payments.get(order.id or 0)),
            }
            for order in found.orders
        ],
        "emails": [
            {
                "id": encode_id("EmailMessage", email.id or 0),
                "order": None if email.order_id is None else encode_id("Order", email.order_id),
                "to": email.recipient,
                "subject": email.subject,
                "status": str(email.status),
                "attempts": email.attempts,
                "createdAt": _time(email.created_at),
                "sentAt": _time(email.sent_at),
            }
            for email in found.emails
        ],
    }


def _payment(payment: models.Payment | None) -> dict[str, Any] | None:
    if payment is None:
        return None
    return {
        "id": encode_id("Payment", payment.id or 0),
        "provider": payment.provider,
        "status": str(payment.status),
        "currency": payment.currency,
        "amount": payment.amount,
        "refunded": payment.refunded,
        "failureCode": payment.failure_code,
        "createdAt": _time(payment.created_at),
        "updatedAt": _time(payment.updated_at),
    }


def _time(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()
