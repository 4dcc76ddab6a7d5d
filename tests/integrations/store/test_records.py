"""Records mirror their tables' models (which `test_migrations.py` compares with the migrations), so a column added
to a table cannot leave a loader reading a stale shape."""

from __future__ import annotations

from dataclasses import fields

import pytest

from integrations.store.records import (
    CustomerRecord,
    OrderLineRecord,
    OrderRecord,
    ProductRecord,
    Record,
    table_of,
)
from integrations.store.session import StoreSession
from integrations.store.tags import entity
from resolvers.customer.loaders import CustomerByIdLoader
from resolvers.seed import SeedSize, seed

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
