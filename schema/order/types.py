from __future__ import annotations

from collections.abc import Awaitable, Sequence
from datetime import datetime

import strawberry

from integrations.store import models
from integrations.store.records import CustomerRecord, OrderLineRecord, OrderRecord
from resolvers.batching import load_all, load_both
from schema.cache_control import INHERIT, max_age
from schema.context import Info
from schema.customer.types import Customer
from schema.email.types import EmailMessage
from schema.ids import encode_id
from schema.money import Money
from schema.node import Node
from schema.payment.types import Payment
from schema.prefetched import prefetched
from schema.product.types import Product
from schema.selection import selects

OrderStatus = strawberry.enum(
    models.OrderStatus, name="OrderStatus", description="Where an order is in its life cycle."
)


@strawberry.type(description="One product on an order, at the price it was sold for.", directives=[INHERIT])
class OrderLine:
    product_pk: strawberry.Private[int]
    quantity: int = strawberry.field(description="Units ordered (at least 1).")
    unit_price: Money = strawberry.field(description="Price of one unit when the order was placed.")
    loaded_product: strawberry.Private[Product | None] = None
    """Set by `Order.prefetch`; otherwise `product` loads it."""

    @classmethod
    def from_row(cls, row: models.OrderLine | OrderLineRecord, currency: str) -> OrderLine:
        return cls(
            product_pk=row.product_id,
            quantity=row.quantity,
            unit_price=Money(amount=row.unit_price, currency=currency),
        )

    @strawberry.field(description="The product ordered.", graphql_type=Product, metadata=prefetched("loaded_product"))
    def product(self, info: Info) -> Product | Awaitable[Product]:
        if self.loaded_product is not None:
            return self.loaded_product
        return self._load_product(info)

    async def _load_product(self, info: Info) -> Product:
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
    loaded_customer: strawberry.Private[Customer | None] = None
    loaded_lines: strawberry.Private[list[OrderLine] | None] = None
    """Both set by `prefetch`; otherwise `customer` and `lines` load them."""

    @classmethod
    def from_row(cls, row: models.Order | OrderRecord) -> Order:
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

    @classmethod
    async def prefetch(cls, orders: Sequence[Order], info: Info, *path: str) -> None:
        """Load what the operation reads of `orders` (found at `path` below the current field): their customers,
        lines and lines' products, one batch each through the request's loaders, so those fields of every order
        resolve at once instead of awaiting one by one. Statements are the same as without it.

        For root fields only (a list, or one order): a list nested in another list (`Customer.orders`) would finish
        at a different moment for each parent, depending on what its orders hold, and split its siblings' batches
        (`totalCount`) in two.
        """
        if not orders:
            return
        loaders = info.context.loaders
        wants_customer, wants_lines = selects(info, *path, "customer"), selects(info, *path, "lines")
        customers: list[CustomerRecord | None] = []
        lines: list[list[OrderLineRecord]] = []
        # Only the loaders wanted are made (each costs a request a few µs); two batches run side by side.
        customer_pks, order_pks = [order.customer_pk for order in orders], [order.pk for order in orders]
        if wants_customer and wants_lines:
            customers, lines = await load_both(
                (loaders.customer_by_id, customer_pks), (loaders.order_lines_by_order_id, order_pks)
            )
        elif wants_customer:
            customers = await load_all(loaders.customer_by_id, customer_pks)
        elif wants_lines:
            lines = await load_all(loaders.order_lines_by_order_id, order_pks)
        if wants_customer:
            for order, customer in zip(orders, customers, strict=True):
                assert customer is not None, "order.customer_id is a foreign key"
                order.loaded_customer = Customer.from_row(customer)
        if not wants_lines:
            return
        for order, rows in zip(orders, lines, strict=True):
            order.loaded_lines = [OrderLine.from_row(row, order.total.currency) for row in rows]
        if selects(info, *path, "lines", "product"):
            all_lines = [line for order in orders for line in order.loaded_lines or ()]
            pks = list(dict.fromkeys(line.product_pk for line in all_lines))
            products = {}
            for pk, row in zip(pks, await load_all(loaders.product_by_id, pks), strict=True):
                assert row is not None, "order_line.product_id is a foreign key"
                products[pk] = Product.from_row(row)
            for line in all_lines:
                line.loaded_product = products[line.product_pk]

    @strawberry.field(
        description="Who placed the order.", graphql_type=Customer, metadata=prefetched("loaded_customer")
    )
    def customer(self, info: Info) -> Customer | Awaitable[Customer]:
        if self.loaded_customer is not None:
            return self.loaded_customer
        return self._load_customer(info)

    async def _load_customer(self, info: Info) -> Customer:
        row = await info.context.loaders.customer_by_id.load(self.customer_pk)
        assert row is not None, "order.customer_id is a foreign key"
        return Customer.from_row(row)

    @strawberry.field(
        description="The products ordered, in the order they were added.",
        graphql_type=list[OrderLine],
        metadata=prefetched("loaded_lines"),
    )
    def lines(self, info: Info) -> list[OrderLine] | Awaitable[list[OrderLine]]:
        if self.loaded_lines is not None:
            return self.loaded_lines
        return self._load_lines(info)

    async def _load_lines(self, info: Info) -> list[OrderLine]:
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
