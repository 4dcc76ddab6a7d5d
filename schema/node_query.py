"""`node(id:)` and `nodes(ids:)`: fetch any object by its global ID, batched through the loaders."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import strawberry

from integrations.errors import ErrorCode, UserInputError
from resolvers.access.principal import Principal
from resolvers.access.rules import can_read_customer, can_read_order
from schema.context import Context, Info
from schema.customer.types import Customer
from schema.ids import decode_id
from schema.node import Node
from schema.order.types import Order
from schema.product.types import Product

MAX_NODES = 100

_RESOLVERS: dict[str, Callable[[Context, int], Awaitable[Node | None]]] = {}


def _register(
    type_name: str,
    loader: Callable[[Context], Any],
    convert: Callable[[Any], Node],
    visible: Callable[[Principal, Any], bool] = lambda _principal, _row: True,
) -> None:
    async def resolve(context: Context, pk: int) -> Node | None:
        row = await loader(context).load(pk)
        if row is None or not visible(context.principal, row):
            return None  # what the principal may not see does not exist for it
        return convert(row)

    _RESOLVERS[type_name] = resolve


_register("Customer", lambda c: c.loaders.customer_by_id, Customer.from_row, lambda p, r: can_read_customer(p, r.id))
_register("Product", lambda c: c.loaders.product_by_id, Product.from_row)
_register("Order", lambda c: c.loaders.order_by_id, Order.from_row, lambda p, r: can_read_order(p, r.customer_id))


async def _resolve(context: Context, global_id: str, field: str) -> Node | None:
    type_name, pk = decode_id(global_id, field=field)
    return await _load(context, type_name, pk)


async def _load(context: Context, type_name: str, pk: int) -> Node | None:
    resolve = _RESOLVERS.get(type_name)
    return None if resolve is None else await resolve(context, pk)


@strawberry.type
class NodeQuery:
    @strawberry.field(description="Any object by its global ID, or null if there is none.")
    async def node(self, info: Info, id: strawberry.ID) -> Node | None:
        return await _resolve(info.context, id, "id")

    @strawberry.field(
        description=f"Objects by global ID, in the order asked (null where missing; at most {MAX_NODES})."
    )
    async def nodes(self, info: Info, ids: list[strawberry.ID]) -> list[Node | None]:
        if len(ids) > MAX_NODES:
            raise UserInputError("ids", f"nodes takes at most {MAX_NODES} IDs", code=ErrorCode.OUT_OF_RANGE)
        # Every ID is decoded before anything loads, and every load is awaited even when one fails: a failure
        # must not leave loads running on the request's session after the field (and the request) answered.
        keys = [decode_id(i, field="ids") for i in ids]
        results = await asyncio.gather(*(_load(info.context, *key) for key in keys), return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                raise result
        return [result for result in results if not isinstance(result, BaseException)]
