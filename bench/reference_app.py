"""The baseline: a plain Strawberry app that resolves every relation with its own query (the classic N+1).

It is what one writes without loaders: Strawberry's own ASGI view in Starlette, one `AsyncSession` per request,
`session.get()` for each order's customer and each line's product, one SELECT of lines per order. It reads the
same tables through the same SQLModel models and engine factory as the gateway, and serves the subset of the
gateway's schema that the benchmark queries use, with the same field names, shapes and global IDs, so both
servers answer the same documents with the same `data`.

No caching tricks and no artificial slowness: Strawberry's defaults, and SQLAlchemy's identity map (a second
`session.get()` of the same key in one request is answered without SQL) is left as it comes.

The session's one connection must not be used by two tasks at once, and GraphQL resolves sibling fields and
list items concurrently, so every statement holds a per-request lock (as the gateway's `StoreSession` does).

Run: ``DATABASE_URL=... uvicorn --factory bench.reference_app:create_app``.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import strawberry
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from strawberry.asgi import GraphQL
from strawberry.types import Info as StrawberryInfo
from strawberry.types.unset import UNSET

from integrations.store import models
from integrations.store.engine import create_engine, create_sessionmaker

# Same cap and default as the gateway (resolvers/pagination.py) so `orders(first:)` means the same thing.
DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100


@dataclass
class Context:
    session: AsyncSession
    lock: asyncio.Lock


Info = StrawberryInfo[Context, None]


def encode_id(type_name: str, pk: int) -> str:
    """The gateway's global ID format: urlsafe base64 of ``"Order:42"`` without padding."""
    return base64.urlsafe_b64encode(f"{type_name}:{pk}".encode()).decode().rstrip("=")


def decode_id(value: str, expected: str) -> int | None:
    """The primary key in a global ID of type `expected`, or None for anything else."""
    try:
        decoded = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    type_name, _, pk = decoded.partition(":")
    return int(pk) if type_name == expected and pk.isascii() and pk.isdigit() else None


OrderStatus = strawberry.enum(models.OrderStatus, name="OrderStatus")


@strawberry.type
class Money:
    amount: int
    currency: str


@strawberry.type
class Customer:
    id: strawberry.ID
    name: str
    email: str

    @classmethod
    def from_row(cls, row: models.Customer) -> Customer:
        assert row.id is not None
        return cls(id=strawberry.ID(encode_id("Customer", row.id)), name=row.name, email=row.email)


@strawberry.type
class Product:
    id: strawberry.ID
    sku: str
    name: str
    description: str
    price: Money
    stock: int

    @classmethod
    def from_row(cls, row: models.Product) -> Product:
        assert row.id is not None
        return cls(
            id=strawberry.ID(encode_id("Product", row.id)),
            sku=row.sku,
            name=row.name,
            description=row.description,
            price=Money(amount=row.price, currency=row.currency),
            stock=row.stock,
        )


@strawberry.type
class OrderLine:
    product_pk: strawberry.Private[int]
    quantity: int
    unit_price: Money

    @strawberry.field
    async def product(self, info: Info) -> Product:
        context = info.context
        async with context.lock:
            row = await context.session.get(models.Product, self.product_pk)
        assert row is not None, "order_line.product_id is a foreign key"
        return Product.from_row(row)


@strawberry.type
class Order:
    id: strawberry.ID
    pk: strawberry.Private[int]
    customer_pk: strawberry.Private[int]
    number: str
    status: OrderStatus  # type: ignore[valid-type]
    total: Money

    @classmethod
    def from_row(cls, row: models.Order) -> Order:
        assert row.id is not None
        return cls(
            id=strawberry.ID(encode_id("Order", row.id)),
            pk=row.id,
            customer_pk=row.customer_id,
            number=row.number,
            status=models.OrderStatus(row.status),
            total=Money(amount=row.total, currency=row.currency),
        )

    @strawberry.field
    async def customer(self, info: Info) -> Customer:
        context = info.context
        async with context.lock:
            row = await context.session.get(models.Customer, self.customer_pk)
        assert row is not None, "order.customer_id is a foreign key"
        return Customer.from_row(row)

    @strawberry.field
    async def lines(self, info: Info) -> list[OrderLine]:
        context = info.context
        statement = select(models.OrderLine).where(models.OrderLine.order_id == self.pk).order_by(models.OrderLine.id)  # type: ignore[arg-type]
        async with context.lock:
            rows = (await context.session.scalars(statement)).all()
        return [
            OrderLine(
                product_pk=row.product_id,
                quantity=row.quantity,
                unit_price=Money(amount=row.unit_price, currency=self.total.currency),
            )
            for row in rows
        ]


@strawberry.type
class OrderEdge:
    cursor: str
    node: Order


@strawberry.type
class OrderConnection:
    edges: list[OrderEdge]


@strawberry.type
class Query:
    @strawberry.field
    async def order(self, info: Info, id: strawberry.ID) -> Order | None:
        pk = decode_id(id, "Order")
        if pk is None:
            return None
        context = info.context
        async with context.lock:
            row = await context.session.get(models.Order, pk)
        return None if row is None else Order.from_row(row)

    @strawberry.field
    async def orders(self, info: Info, first: int | None = None) -> OrderConnection:
        size = DEFAULT_PAGE_SIZE if first is None else max(0, min(first, MAX_PAGE_SIZE))
        statement = select(models.Order).order_by(models.Order.id).limit(size)  # type: ignore[arg-type]
        context = info.context
        async with context.lock:
            rows = (await context.session.scalars(statement)).all()
        return OrderConnection(
            edges=[OrderEdge(cursor=encode_id("cursor", row.id or 0), node=Order.from_row(row)) for row in rows]
        )


schema = strawberry.Schema(query=Query)


class ReferenceGraphQL(GraphQL[Context, None]):
    """Strawberry's ASGI view with one `AsyncSession` per request, closed when the response is built."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        super().__init__(schema, graphql_ide=None)
        self.sessionmaker = sessionmaker

    async def run(self, request: Any, context: Any = UNSET, root_value: Any = UNSET) -> Any:
        async with self.sessionmaker() as session:
            return await super().run(request, context=Context(session, asyncio.Lock()), root_value=root_value)


def create_app(database_url: str | None = None) -> Starlette:
    """Factory for `uvicorn --factory bench.reference_app:create_app`; the store is `DATABASE_URL`."""
    url = database_url or os.environ.get("DATABASE_URL")
    if not url:
        raise RuntimeError("set DATABASE_URL (e.g. sqlite+aiosqlite:////tmp/bench.db)")
    engine: AsyncEngine = create_engine(url)
    graphql = ReferenceGraphQL(create_sessionmaker(engine))

    async def healthz(_request: Request) -> Response:
        return Response("ok")

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await engine.dispose()

    app = Starlette(
        routes=[Route("/graphql", graphql, methods=["GET", "POST"]), Route("/healthz", healthz)],
        lifespan=lifespan,
    )
    app.state.engine = engine
    return app
