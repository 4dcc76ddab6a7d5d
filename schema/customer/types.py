from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import strawberry

from integrations.store import models
from integrations.store.records import CustomerRecord
from resolvers.access.rules import CUSTOMERS_READ, ORDERS_READ, OWNER
from schema.cache_control import PRIVATE, max_age
from schema.context import Info
from schema.ids import encode_id
from schema.node import Node
from schema.pagination import After, Before, Connection, First, Last, page_request, to_connection
from schema.permissions import requires

if TYPE_CHECKING:
    from schema.order.types import Order


@strawberry.type(description="A person who buys from the store.", directives=[max_age(60)])
class Customer(Node):
    pk: strawberry.Private[int]
    name: str = strawberry.field(description="Full name.")
    email: str | None = strawberry.field(
        description="Email address, unique across customers (stored lower-case). Null, with a FORBIDDEN error, "
        "unless the principal is this customer or may read customers.",
        directives=[PRIVATE, requires(CUSTOMERS_READ, OWNER)],
    )
    created_at: datetime = strawberry.field(description="When the customer was created (UTC, ISO 8601).")

    @classmethod
    def from_row(cls, row: models.Customer | CustomerRecord) -> Customer:
        assert row.id is not None
        return cls(
            id=strawberry.ID(encode_id("Customer", row.id)),
            pk=row.id,
            name=row.name,
            email=row.email,
            created_at=row.created_at,
        )

    @property
    def owner_customer_id(self) -> int:
        return self.pk

    @strawberry.field(description="The customer's orders, oldest first.", directives=[requires(ORDERS_READ, OWNER)])
    async def orders(
        self, info: Info, first: First = None, after: After = None, last: Last = None, before: Before = None
    ) -> Connection[Annotated[Order, strawberry.lazy("schema.order.types")]] | None:
        from schema.order.types import Order  # a cycle: Order.customer returns a Customer

        request = page_request(first=first, after=after, last=last, before=before)
        loaders = info.context.loaders
        page = await loaders.orders_by_customer_id.load((self.pk, request))
        return to_connection(
            page,
            Order.from_row,
            key=lambda row: row.id or 0,
            count=lambda: loaders.order_count_by_customer_id.load(self.pk),
        )
