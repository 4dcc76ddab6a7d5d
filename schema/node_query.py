"""`node(id:)` and `nodes(ids:)`: fetch any object by its global ID, batched through the loaders."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import strawberry

from integrations.errors import ErrorCode, UserInputError
from schema.context import Context, Info
from schema.customer.types import Customer
from schema.ids import decode_id
from schema.node import Node
from schema.order.types import Order
from schema.product.types import Product

MAX_NODES = 100

_RESOLVERS: dict[str, Callable[[Context, int], Awaitable[Node | None]]] = {}


def _register(type_name: str, loader: Callable[[Context], Any], convert: Callable[[Any], Node]) -> None:
    async def resolve(context: Context, pk: int) -> Node | None:
        row = await loader(context).load(pk)
        return None if row is None else convert(row)

    _RESOLVERS[type_name] = resolve


_register("Customer", lambda c: c.loaders.customer_by_id, Customer.from_row)
_register("Product", lambda c: c.loaders.product_by_id, Product.from_row)
_register("Order", lambda c: c.loaders.order_by_id, Order.from_row)


async def _resolve(context: Context, global_id: str, field: str) -> Node | None:
    type_name, pk = decode_id(global_id, field=field)
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
        return list(await asyncio.gather(*(_resolve(info.context, i, "ids") for i in ids)))
