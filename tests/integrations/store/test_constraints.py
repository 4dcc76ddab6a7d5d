"""The database itself enforces the rules: NOT NULL, UNIQUE, FK and CHECK constraints on both backends."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, insert, select
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlmodel import col

from integrations.store.models import (
    ApiKey,
    ClientPolicy,
    Customer,
    Order,
    OrderLine,
    Product,
    TrustedDocument,
    metadata,
)
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


def api_key_row(**overrides: Any) -> dict[str, Any]:
    row = {
        "public_id": "0123456789ab",
        "key_hash": "a" * 64,
        "client": "acme",
        "scopes": "orders:read",
        "created_at": utcnow(),
    }
    return {**row, **overrides}


@pytest.mark.parametrize(
    "overrides",
    [
        {},  # UNIQUE public_id (the lookup prefix)
        {"public_id": None},
        {"public_id": "0123456789AB"},  # lower-case hex only
        {"public_id": "0123456789a"},
        {"public_id": "0123456789abc"},  # PostgreSQL: too long for VARCHAR(12); SQLite: the CHECK
        {"public_id": "0123456789ag"},
        {"public_id": "ba9876543210", "key_hash": None},
        {"public_id": "ba9876543210", "key_hash": "A" * 64},
        {"public_id": "ba9876543210", "key_hash": "a" * 63},
        {"public_id": "ba9876543210", "client": ""},
        {"public_id": "ba9876543210", "client": None},
        {"public_id": "ba9876543210", "label": ""},
        {"public_id": "ba9876543210", "scopes": ""},
        {"public_id": "ba9876543210", "scopes": None},
        {"public_id": "ba9876543210", "scopes": "x" * 2001},
        {"public_id": "ba9876543210", "created_at": None},
    ],
)
async def test_api_key_constraints(store: StoreSession, overrides: dict[str, Any]) -> None:
    table = metadata.tables["api_key"]  # Core, so explicit NULLs are sent
    async with store.transaction() as session:
        await session.execute(insert(table), [api_key_row(label="CI")])
    too_long = len(overrides.get("public_id") or "") > 12  # asyncpg reports it as a plain DBAPIError
    with pytest.raises(DBAPIError if too_long else IntegrityError):
        async with store.transaction() as session:
            await session.execute(insert(table), [api_key_row(**overrides)])
    async with store.transaction() as session:  # the same row with a fresh id is fine, label or not
        await session.execute(insert(table), [api_key_row(public_id="ba9876543210")])
    assert await store.scalar(select(func.count()).select_from(ApiKey)) == 2
