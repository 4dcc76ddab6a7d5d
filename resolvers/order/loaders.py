"""Loaders for orders and their relations; each batch is one statement whatever the number of keys."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from functools import cache
from typing import Any

from aiodataloader import DataLoader
from sqlalchemy import Select, bindparam, func
from sqlalchemy.orm import aliased
from sqlmodel import col, select

from integrations.store.models import Order, OutboxEmail
from integrations.store.records import (
    KEYS,
    CustomerRecord,
    OrderLineRecord,
    OrderRecord,
    select_by_keys,
    select_with_parent_by_id,
    table_of,
    with_parent,
)
from integrations.store.session import StoreSession
from resolvers.batching import BatchLoader, ByIdLoader, Primer, many_per_key, one_per_key
from resolvers.customer.loaders import CustomerByIdLoader
from resolvers.pagination import Page, PageRequest, to_page


class OrderByIdLoader(ByIdLoader[OrderRecord]):
    record = OrderRecord


class OrderWithCustomerByIdLoader(BatchLoader[int, OrderRecord | None]):
    """Orders by primary key, each read with its customer in the same statement (a join) instead of one statement
    for the orders and another for their customers. The rows are handed to the request's order and customer
    loaders (through `primer`), which then have them without a statement."""

    primes: frozenset[type[DataLoader[Any, Any]]] = frozenset({OrderByIdLoader, CustomerByIdLoader})
    """The loaders it hands rows to (a `Primer`'s targets; a set made once, not per request)."""

    def __init__(self, store: StoreSession, primer: Primer) -> None:
        super().__init__(store)
        self.primer = primer

    async def batch_load_fn(self, keys: Sequence[int]) -> list[OrderRecord | None]:
        statement = select_with_parent_by_id(OrderRecord, CustomerRecord, "customer_id", self.store.dialect)
        rows = await self.store.records(statement, _order_with_customer, {KEYS: list(keys)})
        # No write can have come between the read and this (the session's lock is held until the read returns, and
        # nothing here awaits): the loaders are handed rows as current as any they read themselves.
        for order, customer in rows:
            self.primer.prime(OrderByIdLoader, order.id, order)
            self.primer.prime(CustomerByIdLoader, customer.id, customer)
        return one_per_key(keys, [order for order, _customer in rows], lambda row: row.id)


_order_with_customer = with_parent(OrderRecord, CustomerRecord)


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
            statement = _pages_statement(request.backwards, request.after is not None, request.before is not None)
            values: dict[str, Any] = {"customer_ids": customer_ids, "rows": request.size + 1}
            if request.after is not None:
                values["after"] = request.after
            if request.before is not None:
                values["before"] = request.before
            rows = await self.store.scalars(statement, values)
            grouped = many_per_key(customer_ids, rows, lambda row: row.customer_id)
            for customer_id, customer_rows in zip(customer_ids, grouped, strict=True):
                pages[(customer_id, request)] = to_page(customer_rows, request)
        return [pages[key] for key in keys]


@cache
def _pages_statement(backwards: bool, after: bool, before: bool) -> Select[Order]:
    """Built once per direction and bounds (its values are bound at execution): building the window, its subquery
    and the alias over it for every batch cost CPU and left SQLAlchemy's own reference cycles (a subquery's columns
    and the subquery) to the cyclic garbage collector."""
    order_key = col(Order.id).desc() if backwards else col(Order.id).asc()
    numbered = select(
        Order,
        func.row_number().over(partition_by=col(Order.customer_id), order_by=order_key).label("position"),
    ).where(col(Order.customer_id).in_(bindparam("customer_ids", expanding=True)))
    if after:
        numbered = numbered.where(col(Order.id) > bindparam("after"))
    if before:
        numbered = numbered.where(col(Order.id) < bindparam("before"))
    subquery = numbered.subquery()
    order = aliased(Order, subquery)
    return (
        select(order)
        .where(subquery.c.position <= bindparam("rows"))
        .order_by(subquery.c.customer_id, subquery.c.position)
    )


class OrderCountByCustomerIdLoader(BatchLoader[int, int]):
    async def batch_load_fn(self, keys: Sequence[int]) -> list[int]:
        counts = {customer_id: n for customer_id, n in await self.store.rows(_counts, {"customer_ids": list(keys)})}
        return [counts.get(key, 0) for key in keys]


_counts = (
    select(col(Order.customer_id), func.count())
    .where(col(Order.customer_id).in_(bindparam("customer_ids", expanding=True)))
    .group_by(col(Order.customer_id))
)
"""Built once, its keys bound at execution (see `_pages_statement`)."""


class EmailsByOrderIdLoader(BatchLoader[int, list[OutboxEmail]]):
    async def batch_load_fn(self, keys: Sequence[int]) -> list[list[OutboxEmail]]:
        statement = select(OutboxEmail).where(col(OutboxEmail.order_id).in_(keys)).order_by(col(OutboxEmail.id))
        return many_per_key(keys, await self.store.scalars(statement), lambda row: row.order_id)
