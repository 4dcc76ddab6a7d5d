"""Demo and benchmark data: deterministic for a given size, inserted in bulk."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import Table, delete, func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import SQLModel, col

from integrations.errors import GatewayError
from integrations.store.models import (
    Customer,
    IdempotencyRecord,
    LocalPaymentIntent,
    LocalRefund,
    Order,
    OrderLine,
    OrderStatus,
    OutboxEmail,
    Payment,
    Product,
    WebhookEvent,
)
from integrations.store.session import StoreSession
from integrations.store.types import utcnow
from resolvers.order.numbers import new_order_number
from resolvers.order.placement import LineRequest, PlaceOrderRequest, place_order
from resolvers.order.refunds import refund_order
from resolvers.services import Services

FIRST = [
    "Ada",
    "Alan",
    "Grace",
    "Edsger",
    "Barbara",
    "Donald",
    "Margaret",
    "Ken",
    "Radia",
    "Linus",
    "Frances",
    "John",
    "Hedy",
    "Dennis",
    "Sophie",
    "Tim",
    "Katherine",
    "Guido",
    "Anita",
    "Niklaus",
]
LAST = [
    "Lovelace",
    "Turing",
    "Hopper",
    "Dijkstra",
    "Liskov",
    "Knuth",
    "Hamilton",
    "Thompson",
    "Perlman",
    "Torvalds",
    "Allen",
    "McCarthy",
    "Lamarr",
    "Ritchie",
    "Wilson",
    "Berners-Lee",
    "Johnson",
    "van Rossum",
    "Borg",
    "Wirth",
]
ADJECTIVES = [
    "Ergonomic",
    "Rustic",
    "Sleek",
    "Durable",
    "Compact",
    "Wireless",
    "Organic",
    "Vintage",
    "Smart",
    "Handmade",
]
NOUNS = [
    "Keyboard",
    "Chair",
    "Lamp",
    "Backpack",
    "Notebook",
    "Mug",
    "Headphones",
    "Desk",
    "Bottle",
    "Jacket",
    "Monitor",
    "Pen",
]
STATUSES = (
    [OrderStatus.PAID] * 14
    + [OrderStatus.PENDING] * 3
    + [
        OrderStatus.CANCELLED,
        OrderStatus.REFUNDED,
        OrderStatus.PARTIALLY_REFUNDED,
        OrderStatus.PAYMENT_FAILED,
    ]
)


@dataclass(frozen=True)
class SeedSize:
    customers: int = 20
    products: int = 12
    orders: int = 60
    lines_per_order: int = 3


@dataclass(frozen=True)
class SeedReport:
    customers: int
    products: int
    orders: int
    lines: int
    skipped: bool = False


async def seed(store: StoreSession, size: SeedSize, *, reset: bool = False, random_seed: int = 42) -> SeedReport:
    """Fill an empty store (or, with `reset`, an emptied one); a store that has data is left untouched."""
    rng = random.Random(random_seed)
    async with store.transaction() as session:
        if reset:
            for table in (
                WebhookEvent,
                LocalRefund,
                LocalPaymentIntent,
                OutboxEmail,
                Payment,
                IdempotencyRecord,
                OrderLine,
                Order,
                Product,
                Customer,
            ):
                await session.execute(delete(table))
        elif (await session.scalar(select(func.count()).select_from(Customer))) or 0:
            return SeedReport(0, 0, 0, 0, skipped=True)
        now = utcnow()
        customers = [
            {
                "name": f"{FIRST[i % len(FIRST)]} {LAST[(i // len(FIRST) + i) % len(LAST)]}",
                "email": f"customer{i + 1}@example.com",
                "created_at": now - timedelta(days=400 - (i * 365 // max(size.customers, 1))),
            }
            for i in range(size.customers)
        ]
        customer_ids = await _insert(session, Customer, customers)
        prices = [rng.randrange(199, 49_999, 100) for _ in range(size.products)]
        products = [
            {
                "sku": f"SKU-{i + 1:05d}",
                "name": f"{ADJECTIVES[i % len(ADJECTIVES)]} {NOUNS[(i // len(ADJECTIVES) + i) % len(NOUNS)]}",
                "description": "A demo product seeded for the gateway.",
                "price": price,
                "currency": "USD",
                "stock": rng.choice([0, 5, 25, 100, 1000]),
                "created_at": now - timedelta(days=380),
            }
            for i, price in enumerate(prices)
        ]
        product_ids = await _insert(session, Product, products)
        price_of = dict(zip(product_ids, prices, strict=True))
        if not customer_ids or not product_ids:
            return SeedReport(len(customer_ids), len(product_ids), 0, 0)

        order_lines: list[list[tuple[int, int]]] = []
        orders = []
        for i in range(size.orders):
            chosen = rng.sample(product_ids, min(size.lines_per_order, len(product_ids)))
            lines = [(product_id, rng.randint(1, 4)) for product_id in chosen]
            order_lines.append(lines)
            orders.append(
                {
                    "number": new_order_number(rng),
                    "customer_id": rng.choice(customer_ids),
                    "status": rng.choice(STATUSES).value,
                    "total": sum(price_of[p] * q for p, q in lines),
                    "currency": "USD",
                    "created_at": now - timedelta(minutes=(size.orders - i) * 90),
                }
            )
        order_ids = await _insert(session, Order, orders)
        line_rows = [
            {"order_id": order_id, "product_id": product_id, "quantity": quantity, "unit_price": price_of[product_id]}
            for order_id, lines in zip(order_ids, order_lines, strict=True)
            for product_id, quantity in lines
        ]
        await session.execute(insert(OrderLine), line_rows)
    return SeedReport(len(customer_ids), len(product_ids), len(order_ids), len(line_rows))


@dataclass(frozen=True)
class DemoOrder:
    key: str
    payment_method: str
    refund: int | None = None
    """None: no refund; 0: refund everything; n: refund n minor units."""


DEMO_ORDERS = (
    DemoOrder("seed-paid-1", "pm_card_visa"),
    DemoOrder("seed-paid-2", "pm_card_mastercard"),
    DemoOrder("seed-declined", "pm_card_chargeDeclined"),
    DemoOrder("seed-refunded", "pm_card_visa", refund=0),
    DemoOrder("seed-partially-refunded", "pm_card_visa", refund=100),
)


async def seed_payments(store: StoreSession, services: Services) -> list[str]:
    """Place a few orders through the configured payment provider (paid, declined, refunded), as a client would.

    Idempotency keys are fixed, so running it twice places nothing new. Returns one line per order.
    """
    customers = list(await store.scalars(select(Customer).order_by(col(Customer.id)).limit(len(DEMO_ORDERS))))
    in_stock = select(Product).where(col(Product.stock) >= 10).order_by(col(Product.id)).limit(2)
    products = list(await store.scalars(in_stock))
    if not customers or not products:
        return []
    report = []
    for index, demo in enumerate(DEMO_ORDERS):
        customer = customers[index % len(customers)]
        assert customer.id is not None
        request = PlaceOrderRequest(
            customer_id=customer.id,
            lines=tuple(LineRequest(product_id=product.id or 0, quantity=1) for product in products),
            payment_method=demo.payment_method,
            idempotency_key=demo.key,
        )
        try:
            placement = await place_order(store, services, request)
            order = placement.order
            assert order is not None
            assert order.id is not None
            if demo.refund is not None and order.status == OrderStatus.PAID:
                order = await refund_order(services, order.id, demo.refund or None)
        except GatewayError as error:
            report.append(f"{demo.key}: not placed ({error.message})")
            continue
        report.append(f"{order.number}: {order.status}")
    return report


async def _insert(session: AsyncSession, model: type[SQLModel], rows: list[dict[str, Any]]) -> list[int]:
    """Bulk insert (one executemany) returning the new primary keys in the order of `rows`."""
    if not rows:
        return []
    table: Table = model.__table__  # type: ignore[attr-defined]
    statement = insert(table).returning(table.c.id, sort_by_parameter_order=True)
    return [int(pk) for pk in await session.scalars(statement, rows)]
