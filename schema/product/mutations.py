from __future__ import annotations

import strawberry

from resolvers.access.rules import ROLE_ADMIN
from resolvers.product.mutations import ProductChanges, create_product, update_product
from schema.context import Info
from schema.errors import INPUT_ERRORS, UserError, user_errors
from schema.ids import decode_typed_id
from schema.money import MoneyInput
from schema.permissions import requires
from schema.product.types import Product


@strawberry.input(description="A new product.")
class CreateProductInput:
    sku: str = strawberry.field(description="Stock keeping unit; must be unique (1 to 64 characters).")
    name: str = strawberry.field(description="Display name (1 to 200 characters).")
    price: MoneyInput = strawberry.field(description="Unit price; amount must not be negative.")
    description: str = strawberry.field(
        default="", description="Longer description; may span lines (at most 5000 characters)."
    )
    stock: int = strawberry.field(default=0, description="Units in stock (0 to 1000000000).")


@strawberry.input(description="Changes to a product; omitted fields stay as they are.")
class UpdateProductInput:
    id: strawberry.ID = strawberry.field(description="The product to change.")
    sku: str | None = strawberry.field(default=None, description="New SKU; must be unique.")
    name: str | None = strawberry.field(default=None, description="New display name.")
    description: str | None = strawberry.field(default=None, description="New description.")
    price: MoneyInput | None = strawberry.field(default=None, description="New unit price.")
    stock: int | None = strawberry.field(default=None, description="New stock level (0 to 1000000000).")


@strawberry.type(description="Result of createProduct.")
class CreateProductPayload:
    product: Product | None = strawberry.field(description="The created product, or null if userErrors is not empty.")
    user_errors: list[UserError] = strawberry.field(description="Why the input was refused; empty on success.")


@strawberry.type(description="Result of updateProduct.")
class UpdateProductPayload:
    product: Product | None = strawberry.field(description="The updated product, or null if userErrors is not empty.")
    user_errors: list[UserError] = strawberry.field(description="Why the input was refused; empty on success.")


def _changes(data: CreateProductInput | UpdateProductInput) -> ProductChanges:
    return ProductChanges(
        sku=data.sku,
        name=data.name,
        description=data.description,
        price=None if data.price is None else data.price.amount,
        currency=None if data.price is None else data.price.currency,
        stock=data.stock,
    )


@strawberry.type
class ProductMutation:
    @strawberry.mutation(description="Create a product (admins).", directives=[requires(ROLE_ADMIN)])
    async def create_product(self, info: Info, input: CreateProductInput) -> CreateProductPayload:
        try:
            row = await create_product(info.context.store, _changes(input))
        except INPUT_ERRORS as error:
            return CreateProductPayload(product=None, user_errors=user_errors(error))
        return CreateProductPayload(product=Product.from_row(row), user_errors=[])

    @strawberry.mutation(
        description="Change a product's details, price or stock (admins).", directives=[requires(ROLE_ADMIN)]
    )
    async def update_product(self, info: Info, input: UpdateProductInput) -> UpdateProductPayload:
        try:
            pk = decode_typed_id(input.id, "Product")
            row = await update_product(info.context.store, pk, _changes(input))
        except INPUT_ERRORS as error:
            return UpdateProductPayload(product=None, user_errors=user_errors(error))
        return UpdateProductPayload(product=Product.from_row(row), user_errors=[])
