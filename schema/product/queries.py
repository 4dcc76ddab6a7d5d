from __future__ import annotations

import strawberry

from integrations.store import models
from resolvers.product.queries import ProductFilter as Filter
from resolvers.product.queries import products_statement
from schema.cache_control import max_age
from schema.context import Info
from schema.lookup import by_global_id, connection
from schema.pagination import After, Before, Connection, First, Last
from schema.product.types import Product


@strawberry.input(description="Narrow a product list; all given conditions must hold.")
class ProductFilter:
    sku_in: list[str] | None = strawberry.field(default=None, description="SKU is one of these (at most 100).")
    name_contains: str | None = strawberry.field(default=None, description="Name contains this text (any case).")
    in_stock: bool | None = strawberry.field(
        default=None, description="true: only products with stock; false: only sold-out products."
    )


@strawberry.type
class ProductQuery:
    @strawberry.field(description="A product by ID, or null if there is none.")
    async def product(self, info: Info, id: strawberry.ID) -> Product | None:
        return await by_global_id(id, "Product", info.context.loaders.product_by_id, Product.from_row)

    @strawberry.field(description="Products in creation order, optionally filtered.", directives=[max_age(60)])
    async def products(
        self,
        info: Info,
        first: First = None,
        after: After = None,
        last: Last = None,
        before: Before = None,
        filter: ProductFilter | None = None,
    ) -> Connection[Product]:
        where = Filter()
        if filter is not None:
            sku_in = None if filter.sku_in is None else tuple(filter.sku_in)
            where = Filter(sku_in=sku_in, name_contains=filter.name_contains, in_stock=filter.in_stock)
        return await connection(
            info,
            products_statement(where),
            models.Product.id,
            Product.from_row,
            first=first,
            after=after,
            last=last,
            before=before,
        )
