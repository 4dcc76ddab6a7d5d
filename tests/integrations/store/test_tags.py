"""Cache tags read off statements: entity tags for rows looked up by primary key, listing tags otherwise."""

from __future__ import annotations

from typing import NamedTuple

from sqlalchemy import bindparam, select, update
from sqlmodel import col

from integrations.store.models import Customer, Order
from integrations.store.records import CustomerRecord, OrderRecord, select_by_keys, select_with_parent_by_id
from integrations.store.tags import anything, entity, listing, read_tags, write_tags


def test_a_primary_key_bound_at_execution_pins_the_read_only_when_its_value_is_given() -> None:
    statement = select(col(Order.status)).where(col(Order.id) == bindparam("id"))
    assert read_tags(statement, parameters={"id": 5}) == {anything("order")}
    # Unknown keys: it may read any order, so an update of any of them must reach it through the listing tag.
    assert read_tags(statement) == {anything("order"), listing("order")}
    many = select(col(Order.status)).where(col(Order.id).in_(bindparam("ids", expanding=True)))
    assert read_tags(many, parameters={"ids": [1, 2]}) == {anything("order")}
    assert read_tags(many) == {anything("order"), listing("order")}


def test_a_write_whose_keys_are_bound_at_execution_invalidates_the_whole_table() -> None:
    statement = update(Order).where(col(Order.id) == bindparam("id")).values(status="PAID")
    assert write_tags(statement) == {listing("order"), anything("order")}
    assert write_tags(update(Order).where(col(Order.id) == 5).values(status="PAID")) == {
        listing("order"),
        entity("order", 5),
    }


def test_a_lookup_joined_with_its_parent_pins_both_tables_and_a_further_join_only_those() -> None:
    joined = select_with_parent_by_id(OrderRecord, CustomerRecord, "customer_id", "postgresql")
    pair = (OrderRecord(1, "ORD-1", 7, "PAID", 100, "USD", None), CustomerRecord(7, "a@example.com", "A", None))  # type: ignore[arg-type]
    assert read_tags(joined, [pair]) == {
        anything("order"),
        anything("customer"),
        entity("order", 1),
        entity("customer", 7),
    }
    lookup = select_by_keys(OrderRecord, "id", "postgresql")
    further = lookup.join_from(Order, Customer, col(Order.customer_id) == col(Customer.id)).where(
        col(Customer.name) == "A"
    )
    assert listing("customer") in read_tags(further)  # a customer renamed "A" may join this answer
    assert listing("order") not in read_tags(further)


def test_a_record_that_is_a_named_tuple_is_tagged_as_itself() -> None:
    class Fields(NamedTuple):
        id: int
        name: str

    class Row(Fields):
        __tablename__ = "customer"

    statement = select_by_keys(CustomerRecord, "id", "postgresql")
    assert entity("customer", 3) in read_tags(statement, [Row(3, "C")])
