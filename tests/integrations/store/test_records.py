"""Records mirror their tables' models (which `test_migrations.py` compares with the migrations), so a column added
to a table cannot leave a loader reading a stale shape."""

from __future__ import annotations

from dataclasses import fields
from typing import Any, cast

import pytest
from sqlalchemy import Select, func, text
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.orm import aliased
from sqlmodel import col, select

from integrations.store import models
from integrations.store.records import (
    BY_TABLE,
    CustomerRecord,
    OrderLineRecord,
    OrderRecord,
    ProductRecord,
    Record,
    as_records,
    table_of,
)
from integrations.store.session import StoreSession
from integrations.store.tags import anything, entity, listing
from resolvers.customer.loaders import CustomerByIdLoader
from resolvers.loaders import Loaders, observe_batches
from resolvers.pagination import PageRequest, fetch_page
from resolvers.seed import SeedSize, seed
from resolvers.services import Services
from tests.conftest import StatementCounter

RECORDS: list[type[Record]] = [CustomerRecord, ProductRecord, OrderRecord, OrderLineRecord]


@pytest.mark.parametrize("record", RECORDS, ids=lambda record: record.__name__)
def test_a_records_fields_are_its_tables_columns_in_order(record: type[Record]) -> None:
    assert [field.name for field in fields(record)] == [column.name for column in table_of(record).columns]  # type: ignore[arg-type]


async def test_records_are_tagged_as_the_entities_they_copy(store: StoreSession) -> None:
    await seed(store, SeedSize(customers=3, products=1, orders=1, lines_per_order=1))
    store.reads = set()
    customers = await CustomerByIdLoader(store).load_many([1, 2, 99])
    assert [customer.id if customer else None for customer in customers] == [1, 2, None]
    assert {entity("customer", 1), entity("customer", 2)} <= store.reads
    assert listing("customer") not in store.reads  # a lookup by primary key: inserts elsewhere do not touch it


@pytest.mark.parametrize("made", ["before", "after"], ids=["loaders made before the join", "made after it"])
async def test_orders_read_with_their_customers_are_tagged_as_both_and_held_by_both_loaders(
    engine: AsyncEngine, store: StoreSession, made: str
) -> None:
    await seed(store, SeedSize(customers=3, products=1, orders=4, lines_per_order=1))
    batches: list[tuple[str, int]] = []
    stop = observe_batches(lambda name, size: batches.append((name, size)))  # the loaders are made observed
    try:
        loaders = Loaders.create(store, cast(Services, None))  # no loader here needs the services
        joined = loaders.order_with_customer_by_id
        if made == "before":
            orders, customers = loaders.order_by_id, loaders.customer_by_id
        store.reads = set()
        read = await joined.load_many([2, 4, 99])
        if made == "after":  # the rows were kept for them (`Primer`)
            orders, customers = loaders.order_by_id, loaders.customer_by_id
    finally:
        stop()
    assert batches == [("OrderWithCustomerByIdLoader", 3)]
    assert [order.id if order else None for order in read] == [2, 4, None]
    owners = {order.customer_id for order in read if order is not None}
    assert store.reads == {
        anything("order"),
        anything("customer"),
        entity("order", 2),
        entity("order", 4),
        *(entity("customer", pk) for pk in owners),
    }  # no listing tag: a new order or customer changes neither answer
    counter = StatementCounter(engine)
    try:
        assert [await orders.load(2), await orders.load(4)] == read[:2]
        held = await customers.load_many(list(owners))
    finally:
        counter.stop()
    assert counter.count == 0  # both loaders were handed what the join read
    assert {customer.id for customer in held if customer is not None} == owners


async def test_rows_kept_for_loaders_not_made_yet_are_dropped_after_a_write(
    engine: AsyncEngine, store: StoreSession
) -> None:
    """A write makes every loader forget what it holds (`Loaders.forget`), and so what was kept for one not made yet:
    made after the write, it reads the row again."""
    await seed(store, SeedSize(customers=3, products=1, orders=4, lines_per_order=1))
    loaders = Loaders.create(store, cast(Services, None))
    store.after_write(loaders.forget)
    [order] = await loaders.order_with_customer_by_id.load_many([2])
    assert order is not None
    async with store.transaction() as session:
        await session.execute(text("UPDATE customer SET name = 'Renamed' WHERE id = :id"), {"id": order.customer_id})
    customer = await loaders.customer_by_id.load(order.customer_id)
    assert customer is not None
    assert customer.name == "Renamed"


def test_the_table_record_map_holds_every_record() -> None:
    assert sorted(BY_TABLE.values(), key=lambda record: record.__name__) == sorted(
        RECORDS, key=lambda record: record.__name__
    )


def test_a_whole_model_select_becomes_its_records_select_with_filters_order_and_limit() -> None:
    statement = select(models.Order).where(col(models.Order.customer_id) == 7).order_by(col(models.Order.id)).limit(3)
    converted = as_records(statement)
    assert converted is not None
    as_select, record = converted
    assert record is OrderRecord
    assert [column.name for column in as_select.selected_columns] == [field.name for field in fields(OrderRecord)]
    sql = str(as_select.compile(compile_kwargs={"literal_binds": True}))
    assert "customer_id = 7" in sql
    assert "ORDER BY" in sql
    assert "LIMIT 3" in sql


@pytest.mark.parametrize(
    "statement",
    [
        select(models.Order.id),  # a column
        select(models.Order, models.Customer),  # two entities
        select(models.ApiKey),  # a model without a record
        select(func.count()).select_from(models.Order),  # an expression
        select(aliased(models.Order)),  # an alias: the record's columns would select from the table beside it
    ],
    ids=["column", "two-entities", "no-record", "expression", "alias"],
)
def test_other_selects_are_left_alone(statement: Select[Any]) -> None:
    assert as_records(statement) is None


async def test_pages_of_a_model_with_records_are_read_as_records(store: StoreSession) -> None:
    await seed(store, SeedSize(customers=4, products=1, orders=1, lines_per_order=1))
    page = await fetch_page(store, select(models.Customer), col(models.Customer.id), PageRequest(first=2))
    assert [type(item) for item in page.items] == [CustomerRecord, CustomerRecord]
    assert [item.id for item in page.items] == [1, 2]
    assert page.has_next_page
