"""The database itself enforces the rules: NOT NULL, UNIQUE, FK and CHECK constraints on both backends."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, insert, select
from sqlalchemy.exc import IntegrityError
from sqlmodel import col

from integrations.store.models import ClientPolicy, Customer, Order, OrderLine, Product, TrustedDocument, metadata
from integrations.store.session import StoreSession
from integrations.store.types import utcnow


async def make_base(store: StoreSession) -> tuple[int, int]:
    async with store.transaction() as session:
        customer = Customer(email="c@example.com", name="C")
        product = Product(sku="P1", name="P", price=100, currency="USD", stock=1)
        session.add_all([customer, product])
        await session.flush()
        assert customer.id is not None
        assert product.id is not None
        return customer.id, product.id


def order_row(customer_id: int, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    row = {
        "number": "ORD-1",
        "customer_id": customer_id,
        "status": "PAID",
        "total": 100,
        "currency": "USD",
        "created_at": utcnow(),
    }
    return {**row, **(overrides or {})}


@pytest.mark.parametrize(
    ("table", "row"),
    [
        (Customer, {"email": "c@example.com", "name": "dup", "created_at": utcnow()}),  # UNIQUE email
        (Customer, {"email": "x@example.com", "name": "", "created_at": utcnow()}),  # CHECK name
        (Customer, {"email": "y@example.com", "name": None, "created_at": utcnow()}),  # NOT NULL
        (Product, {"sku": "P1", "name": "dup", "price": 1, "currency": "USD", "created_at": utcnow()}),
        (Product, {"sku": "P2", "name": "n", "price": -1, "currency": "USD", "created_at": utcnow()}),
        (Product, {"sku": "P3", "name": "n", "price": 1, "currency": "USD", "stock": -1, "created_at": utcnow()}),
        (Product, {"sku": "P4", "name": "n", "price": 1, "currency": "US", "created_at": utcnow()}),
    ],
)
async def test_row_constraints(store: StoreSession, table: Any, row: dict[str, Any]) -> None:
    await make_base(store)
    with pytest.raises(IntegrityError):
        async with store.transaction() as session:
            await session.execute(insert(table), [row])
    assert await store.scalar(select(func.count()).select_from(table)) == 1


@pytest.mark.parametrize(
    "overrides",
    [{"customer_id": 999_999}, {"status": "SHIPPED_TO_MARS"}, {"total": -1}],
)
async def test_order_constraints(store: StoreSession, overrides: dict[str, Any]) -> None:
    customer_id, _ = await make_base(store)
    with pytest.raises(IntegrityError):
        async with store.transaction() as session:
            await session.execute(insert(Order), [order_row(customer_id, overrides)])


async def test_order_number_is_unique(store: StoreSession) -> None:
    customer_id, _ = await make_base(store)
    async with store.transaction() as session:
        await session.execute(insert(Order), [order_row(customer_id)])
    with pytest.raises(IntegrityError):
        async with store.transaction() as session:
            await session.execute(insert(Order), [order_row(customer_id)])


@pytest.mark.parametrize(
    "overrides", [{"quantity": 0}, {"quantity": -2}, {"unit_price": -1}, {"product_id": 999_999}, {"order_id": 999_999}]
)
async def test_order_line_constraints(store: StoreSession, overrides: dict[str, Any]) -> None:
    customer_id, product_id = await make_base(store)
    async with store.transaction() as session:
        order_id = (
            await session.execute(insert(Order).returning(col(Order.id)), [order_row(customer_id)])
        ).scalar_one()
    line = {"order_id": order_id, "product_id": product_id, "quantity": 1, "unit_price": 100, **overrides}
    with pytest.raises(IntegrityError):
        async with store.transaction() as session:
            await session.execute(insert(OrderLine), [line])


async def test_a_customer_with_orders_cannot_be_deleted(store: StoreSession) -> None:
    customer_id, _ = await make_base(store)
    async with store.transaction() as session:
        await session.execute(insert(Order), [order_row(customer_id)])
    with pytest.raises(IntegrityError):
        async with store.transaction() as session:
            await session.delete(await session.get(Customer, customer_id))


def trusted_document_row(**overrides: Any) -> dict[str, Any]:
    row = {
        "client": "acme",
        "document_id": "q1",
        "sha256": "a" * 64,
        "document": "{ __typename }",
        "created_at": utcnow(),
    }
    return {**row, **overrides}


@pytest.mark.parametrize(
    "overrides",
    [
        {"document_id": "q1"},  # UNIQUE (client, document_id)
        {"document_id": "q2", "client": ""},
        {"document_id": "q2", "client": None},
        {"document_id": ""},
        {"document_id": "q2", "sha256": "A" * 64},  # lower-case hex only
        {"document_id": "q2", "sha256": "g" * 64},
        {"document_id": "q2", "sha256": "a" * 63},
        {"document_id": "q2", "sha256": None},
        {"document_id": "q2", "document": None},
    ],
)
async def test_trusted_document_constraints(store: StoreSession, overrides: dict[str, Any]) -> None:
    async with store.transaction() as session:
        await session.execute(insert(TrustedDocument), [trusted_document_row()])
    with pytest.raises(IntegrityError):
        async with store.transaction() as session:
            await session.execute(insert(TrustedDocument), [trusted_document_row(**overrides)])
    async with store.transaction() as session:  # the same id under another client is fine
        await session.execute(insert(TrustedDocument), [trusted_document_row(client="other")])


async def test_client_policy_constraints(store: StoreSession) -> None:
    now = utcnow()
    async with store.transaction() as session:
        await session.execute(insert(ClientPolicy), [{"client": "acme", "created_at": now, "updated_at": now}])
    assert await store.scalar(select(col(ClientPolicy.safelist))) is False  # the database's default
    table = metadata.tables["client_policy"]  # Core, so an explicit NULL is sent rather than the server default
    for row in ({"client": "acme"}, {"client": ""}, {"client": "x", "safelist": None}):
        with pytest.raises(IntegrityError):
            async with store.transaction() as session:
                await session.execute(insert(table), [{"created_at": now, "updated_at": now, **row}])
