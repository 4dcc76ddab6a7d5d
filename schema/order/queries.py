from __future__ import annotations

from datetime import UTC, datetime

import strawberry
from sqlmodel import col

from integrations.errors import ErrorCode, UserInputError
from integrations.store import models
from resolvers.access.rules import ORDERS_READ, ROLE_CUSTOMER, can_read_order, own_customer_only
from resolvers.order.queries import OrderFilter as Filter
from resolvers.order.queries import orders_statement
from schema.cache_control import max_age
from schema.context import Info
from schema.ids import decode_typed_id
from schema.lookup import by_global_id, connection
from schema.order.types import Order, OrderStatus
from schema.pagination import After, Before, Connection, First, Last
from schema.permissions import requires
from schema.selection import operation_selects


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


def _utc(value: datetime | None, field: str) -> datetime | None:
    if value is None:
        return None
    try:
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    except OverflowError:  # 0001-01-01T00:00+01:00 is before the first instant Python can hold in UTC
        raise UserInputError(field, f"{field} is out of range", code=ErrorCode.OUT_OF_RANGE) from None


def _where(filter: OrderFilter | None) -> Filter:
    if filter is None:
        return Filter()
    return Filter(
        status=filter.status,
        customer_id=None
        if filter.customer_id is None
        else decode_typed_id(filter.customer_id, "Customer", field="customerId"),
        created_after=_utc(filter.created_after, "createdAfter"),
        created_before=_utc(filter.created_before, "createdBefore"),
    )


@strawberry.type
class OrderQuery:
    @strawberry.field(description="An order by ID, or null if there is none.")
    async def order(self, info: Info, id: strawberry.ID) -> Order | None:
        principal = info.context.principal
        loaders = info.context.loaders
        # When the operation selects an order's customer, orders are read with their customers, one statement for
        # both. Decided for the whole operation: `order` fields of two loaders would split their batches in two.
        order = await by_global_id(
            id,
            "Order",
            loaders.order_with_customer_by_id if operation_selects(info, "order", "customer") else loaders.order_by_id,
            Order.from_row,
            lambda row: can_read_order(principal, row.customer_id),
        )
        if order is not None:
            await Order.prefetch([order], info)
        return order

    @strawberry.field(
        description="Orders in the order they were placed, optionally filtered (a customer sees its own only).",
        directives=[max_age(30), requires(ORDERS_READ, ROLE_CUSTOMER)],
    )
    async def orders(
        self,
        info: Info,
        first: First = None,
        after: After = None,
        last: Last = None,
        before: Before = None,
        filter: OrderFilter | None = None,
    ) -> Connection[Order] | None:
        statement = orders_statement(_where(filter))
        own = own_customer_only(info.context.principal, ORDERS_READ)
        if own is not None:
            statement = statement.where(col(models.Order.customer_id) == own)
        orders = await connection(
            info,
            statement,
            models.Order.id,
            Order.from_row,
            first=first,
            after=after,
            last=last,
            before=before,
        )
        await Order.prefetch([edge.node for edge in orders.edges], info, "edges", "node")
        return orders
