from __future__ import annotations

from datetime import UTC, datetime

import strawberry

from integrations.store import models
from resolvers.order.queries import OrderFilter as Filter
from resolvers.order.queries import orders_statement
from schema.cache_control import max_age
from schema.context import Info
from schema.ids import decode_typed_id
from schema.lookup import by_global_id, connection
from schema.order.types import Order, OrderStatus
from schema.pagination import After, Before, Connection, First, Last


@strawberry.input(description="Narrow an order list; all given conditions must hold.")
class OrderFilter:
    status: OrderStatus | None = strawberry.field(default=None, description="Only orders in this status.")  # type: ignore[valid-type]
    customer_id: strawberry.ID | None = strawberry.field(default=None, description="Only this customer's orders.")
    created_after: datetime | None = strawberry.field(
        default=None, description="Placed at or after this time (a time without offset is taken as UTC)."
    )
    created_before: datetime | None = strawberry.field(
        default=None, description="Placed strictly before this time (a time without offset is taken as UTC)."
    )


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _where(filter: OrderFilter | None) -> Filter:
    if filter is None:
        return Filter()
    return Filter(
        status=filter.status,
        customer_id=None
        if filter.customer_id is None
        else decode_typed_id(filter.customer_id, "Customer", field="customerId"),
        created_after=_utc(filter.created_after),
        created_before=_utc(filter.created_before),
    )


@strawberry.type
class OrderQuery:
    @strawberry.field(description="An order by ID, or null if there is none.")
    async def order(self, info: Info, id: strawberry.ID) -> Order | None:
        return await by_global_id(id, "Order", info.context.loaders.order_by_id, Order.from_row)

    @strawberry.field(
        description="Orders in the order they were placed, optionally filtered.", directives=[max_age(30)]
    )
    async def orders(
        self,
        info: Info,
        first: First = None,
        after: After = None,
        last: Last = None,
        before: Before = None,
        filter: OrderFilter | None = None,
    ) -> Connection[Order]:
        return await connection(
            info,
            orders_statement(_where(filter)),
            models.Order.id,
            Order.from_row,
            first=first,
            after=after,
            last=last,
            before=before,
        )
