from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Select, func
from sqlmodel import col, select

from integrations.errors import ErrorCode, UserInputError
from integrations.store.models import Product
from resolvers import validation

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
        skus = [validation.search("skuIn", sku) for sku in where.sku_in]
        statement = statement.where(col(Product.sku).in_(skus))
    if where.name_contains:
        needle = validation.search("nameContains", where.name_contains).lower()
        statement = statement.where(func.lower(Product.name).contains(needle, autoescape=True))
    if where.in_stock is not None:
        statement = statement.where(col(Product.stock) > 0 if where.in_stock else col(Product.stock) == 0)
    return statement
