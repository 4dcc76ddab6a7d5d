from __future__ import annotations

from datetime import datetime

import strawberry

from integrations.store import models
from schema.cache_control import INHERIT, max_age
from schema.context import Info
from schema.customer.types import Customer
from schema.email.types import EmailMessage
from schema.ids import encode_id
from schema.money import Money
from schema.node import Node
from schema.payment.types import Payment
from schema.product.types import Product

OrderStatus = strawberry.enum(
    models.OrderStatus, name="OrderStatus", description="Where an order is in its life cycle."
)


@strawberry.type(description="One product on an order, at the price it was sold for.", directives=[INHERIT])
class OrderLine:
    product_pk: strawberry.Private[int]
    quantity: int = strawberry.field(description="Units ordered (at least 1).")
    unit_price: Money = strawberry.field(description="Price of one unit when the order was placed.")

    @classmethod
    def from_row(cls, row: models.OrderLine, currency: str) -> OrderLine:
        return cls(
            product_pk=row.product_id,
            quantity=row.quantity,
            unit_price=Money(amount=row.unit_price, currency=currency),
        )

    @strawberry.field(description="The product ordered.")
    async def product(self, info: Info) -> Product:
        row = await info.context.loaders.product_by_id.load(self.product_pk)
        assert row is not None, "order_line.product_id is a foreign key"
        return Product.from_row(row)

    @strawberry.field(description="unitPrice multiplied by quantity.")
    def subtotal(self) -> Money:
        return Money(amount=self.unit_price.amount * self.quantity, currency=self.unit_price.currency)


@strawberry.type(description="A customer's purchase of one or more products.", directives=[max_age(30)])
class Order(Node):
    pk: strawberry.Private[int]
    customer_pk: strawberry.Private[int]
    number: str = strawberry.field(description='Human-readable unique order number, e.g. "ORD-7K3M9QX2AB".')
    status: OrderStatus = strawberry.field(description="Current status.")  # type: ignore[valid-type]
    created_at: datetime = strawberry.field(description="When the order was placed (UTC, ISO 8601).")
    total: Money = strawberry.field(description="Sum of the lines' subtotals.")

    @classmethod
    def from_row(cls, row: models.Order) -> Order:
        assert row.id is not None
        return cls(
            id=strawberry.ID(encode_id("Order", row.id)),
            pk=row.id,
            customer_pk=row.customer_id,
            number=row.number,
            status=models.OrderStatus(row.status),
            created_at=row.created_at,
            total=Money(amount=row.total, currency=row.currency),
        )

    @property
    def owner_customer_id(self) -> int:
        return self.customer_pk

    @strawberry.field(description="Who placed the order.")
    async def customer(self, info: Info) -> Customer:
        row = await info.context.loaders.customer_by_id.load(self.customer_pk)
        assert row is not None, "order.customer_id is a foreign key"
        return Customer.from_row(row)

    @strawberry.field(description="The products ordered, in the order they were added.")
    async def lines(self, info: Info) -> list[OrderLine]:
        rows = await info.context.loaders.order_lines_by_order_id.load(self.pk)
        return [OrderLine.from_row(row, self.total.currency) for row in rows]

    @strawberry.field(
        description="The order's payment as the provider reports it now (cached briefly). Null when the order has "
        "no payment, or, with an error coded PAYMENT_PROVIDER_UNAVAILABLE, when the provider cannot be reached."
    )
    async def payment(self, info: Info) -> Payment | None:
        row = await info.context.loaders.payment_by_order_id.load(self.pk)
        if row is None:
            return None
        if row.reference is None or row.provider != info.context.services.payments.name:
            return Payment.from_row(row)
        current = await info.context.loaders.provider_payment_by_reference.load(row.reference)
        return Payment.from_provider(row, current)

    @strawberry.field(description="Transactional emails about this order, oldest first.")
    async def emails(self, info: Info) -> list[EmailMessage]:
        rows = await info.context.loaders.emails_by_order_id.load(self.pk)
        return [EmailMessage.from_row(row) for row in rows]
