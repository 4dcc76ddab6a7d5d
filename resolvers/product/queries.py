from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Select, func
from sqlmodel import col, select

from integrations.errors import ErrorCode, UserInputError
from integrations.store.models import Product

MAX_SKUS = 100


@dataclass(frozen=True)
class ProductFilter:
    sku_in: tuple[str, ...] | None = None
    name_contains: str | None = None
    in_stock: bool | None = None


def products_statement(where: ProductFilter) -> Select[Product]:
    statement = select(Product)
    if where.sku_in is not None:
        if len(where.sku_in) > MAX_SKUS:
            raise UserInputError("skuIn", f"skuIn takes at most {MAX_SKUS} SKUs", code=ErrorCode.OUT_OF_RANGE)
        statement = statement.where(col(Product.sku).in_(where.sku_in))
    if where.name_contains:
        statement = statement.where(func.lower(Product.name).contains(where.name_contains.lower(), autoescape=True))
    if where.in_stock is not None:
        statement = statement.where(col(Product.stock) > 0 if where.in_stock else col(Product.stock) == 0)
    return statement
