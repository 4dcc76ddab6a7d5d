"""Create and update products: validated input, constraint violations reported as `UserInputError`s."""

from __future__ import annotations

from dataclasses import dataclass, fields

from integrations.errors import ErrorCode, InputErrors, UserInputError
from integrations.store.models import DESCRIPTION_MAX, NAME_MAX, SKU_MAX, Product
from integrations.store.session import StoreSession
from resolvers import validation
from resolvers.integrity import not_found, reporting_duplicates

MAX_STOCK = 1_000_000_000


@dataclass(frozen=True)
class ProductChanges:
    """Fields to set; None leaves a field as it is."""

    sku: str | None = None
    name: str | None = None
    description: str | None = None
    price: int | None = None
    currency: str | None = None
    stock: int | None = None


REQUIRED = {"sku": "sku", "name": "name", "price": "price", "currency": "price.currency"}
"""Fields a new product needs, with their input paths."""


def _clean(changes: ProductChanges) -> ProductChanges:
    check = validation.Collector()
    clean = ProductChanges(
        sku=None if changes.sku is None else check(validation.text, "sku", changes.sku, max_length=SKU_MAX),
        name=None if changes.name is None else check(validation.text, "name", changes.name, max_length=NAME_MAX),
        description=None
        if changes.description is None
        else check(
            validation.text,
            "description",
            changes.description,
            max_length=DESCRIPTION_MAX,
            required=False,
            multiline=True,
        ),
        price=None if changes.price is None else check(validation.integer, "price.amount", changes.price),
        currency=None if changes.currency is None else check(validation.currency, "price.currency", changes.currency),
        stock=None if changes.stock is None else check(validation.integer, "stock", changes.stock, maximum=MAX_STOCK),
    )
    check.raise_if_any()
    return clean


def _apply(product: Product, changes: ProductChanges) -> None:
    for field in fields(changes):
        value = getattr(changes, field.name)
        if value is not None:
            setattr(product, field.name, value)


async def create_product(store: StoreSession, changes: ProductChanges) -> Product:
    required = [
        UserInputError(path, f"{path} is required", code=ErrorCode.REQUIRED)
        for field, path in REQUIRED.items()
        if getattr(changes, field) is None
    ]
    if required:
        raise InputErrors(required)
    clean = _clean(changes)
    product = Product(sku="", name="", price=0, currency="")
    _apply(product, clean)
    with reporting_duplicates("product", "sku"):
        async with store.transaction() as session:
            session.add(product)
    return product


async def update_product(store: StoreSession, product_id: int, changes: ProductChanges) -> Product:
    clean = _clean(changes)
    with reporting_duplicates("product", "sku"):
        async with store.transaction() as session:
            product = await session.get(Product, product_id, populate_existing=True)
            if product is None:
                raise not_found("product")
            _apply(product, clean)
    return product
