from __future__ import annotations

import strawberry

from integrations.store import models
from integrations.store.records import ProductRecord
from schema.cache_control import max_age
from schema.ids import encode_id
from schema.money import Money
from schema.node import Node


@strawberry.type(description="Something the store sells.", directives=[max_age(60)])
class Product(Node):
    pk: strawberry.Private[int]
    sku: str = strawberry.field(description="Stock keeping unit, unique across products.")
    name: str = strawberry.field(description="Display name.")
    description: str = strawberry.field(description="Longer description (may be empty).")
    price: Money = strawberry.field(description="Current unit price.")
    stock: int = strawberry.field(description="Units in stock (never negative).")

    @classmethod
    def from_row(cls, row: models.Product | ProductRecord) -> Product:
        assert row.id is not None
        return cls(
            id=strawberry.ID(encode_id("Product", row.id)),
            pk=row.id,
            sku=row.sku,
            name=row.name,
            description=row.description,
            price=Money(amount=row.price, currency=row.currency),
            stock=row.stock,
        )
