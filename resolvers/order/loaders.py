"""Loaders for orders and their relations; each batch is one statement whatever the number of keys."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from functools import cache
from typing import Any

from sqlalchemy import Select, func
from sqlalchemy.orm import aliased
from sqlmodel import col, select

from integrations.store.models import Order, OutboxEmail
from integrations.store.records import KEYS, OrderLineRecord, OrderRecord, select_by_keys, table_of
from resolvers.batching import BatchLoader, ByIdLoader, many_per_key
from resolvers.pagination import Page, PageRequest, to_page


class OrderByIdLoader(ByIdLoader[OrderRecord]):
    record = OrderRecord


class OrderLinesByOrderIdLoader(BatchLoader[int, list[OrderLineRecord]]):
    async def batch_load_fn(self, keys: Sequence[int]) -> list[list[OrderLineRecord]]:
        rows = await self.store.records(_lines_statement(self.store.dialect), OrderLineRecord, {KEYS: list(keys)})
        return many_per_key(keys, rows, lambda row: row.order_id)


@cache
def _lines_statement(dialect: str) -> Select[Any]:
    return select_by_keys(OrderLineRecord, "order_id", dialect).order_by(table_of(OrderLineRecord).c.id)


class OrdersByCustomerIdLoader(BatchLoader[tuple[int, PageRequest], Page[Order]]):
    """One page of each customer's orders, for `Customer.orders(first, after)`.

    All customers asking for the same page arguments share one statement: a window function numbers each
    customer's orders and the outer query keeps the first `size + 1` of each.
    """

    async def batch_load_fn(self, keys: Sequence[tuple[int, PageRequest]]) -> list[Page[Order]]:
        by_request: defaultdict[PageRequest, list[int]] = defaultdict(list)
        for customer_id, request in keys:
            by_request[request].append(customer_id)
        pages: dict[tuple[int, PageRequest], Page[Order]] = {}
        for request, customer_ids in by_request.items():
            rows = await self.store.scalars(_pages_statement(customer_ids, request))
            grouped = many_per_key(customer_ids, rows, lambda row: row.customer_id)
            for customer_id, customer_rows in zip(customer_ids, grouped, strict=True):
                pages[(customer_id, request)] = to_page(customer_rows, request)
        return [pages[key] for key in keys]


def _pages_statement(customer_ids: list[int], request: PageRequest) -> Select[Order]:
    order_key = col(Order.id).desc() if request.backwards else col(Order.id).asc()
    numbered = select(
        Order,
        func.row_number().over(partition_by=col(Order.customer_id), order_by=order_key).label("position"),
    ).where(col(Order.customer_id).in_(customer_ids))
    if request.after is not None:
        numbered = numbered.where(col(Order.id) > request.after)
    if request.before is not None:
        numbered = numbered.where(col(Order.id) < request.before)
    subquery = numbered.subquery()
    order = aliased(Order, subquery)
    return (
        select(order)
        .where(subquery.c.position <= request.size + 1)
        .order_by(subquery.c.customer_id, subquery.c.position)
    )


class OrderCountByCustomerIdLoader(BatchLoader[int, int]):
    async def batch_load_fn(self, keys: Sequence[int]) -> list[int]:
        statement = (
            select(col(Order.customer_id), func.count())
            .where(col(Order.customer_id).in_(keys))
            .group_by(col(Order.customer_id))
        )
        counts = {customer_id: n for customer_id, n in await self.store.rows(statement)}
        return [counts.get(key, 0) for key in keys]


class EmailsByOrderIdLoader(BatchLoader[int, list[OutboxEmail]]):
    async def batch_load_fn(self, keys: Sequence[int]) -> list[list[OutboxEmail]]:
        statement = select(OutboxEmail).where(col(OutboxEmail.order_id).in_(keys)).order_by(col(OutboxEmail.id))
        return many_per_key(keys, await self.store.scalars(statement), lambda row: row.order_id)
