from __future__ import annotations

import strawberry

from resolvers.access.rules import CUSTOMERS_WRITE, ROLE_CUSTOMER, act_for_customer
from resolvers.customer.mutations import CustomerChanges, create_customer, update_customer
from schema.context import Info
from schema.customer.types import Customer
from schema.errors import INPUT_ERRORS, UserError, user_errors
from schema.ids import decode_typed_id
from schema.permissions import requires


@strawberry.input(description="A new customer.")
class CreateCustomerInput:
    email: str = strawberry.field(description="Email address; must be unique.")
    name: str = strawberry.field(description="Full name (1 to 200 characters).")


@strawberry.input(description="Changes to a customer; omitted fields stay as they are.")
class UpdateCustomerInput:
    id: strawberry.ID = strawberry.field(description="The customer to change.")
    email: str | None = strawberry.field(default=None, description="New email address; must be unique.")
    name: str | None = strawberry.field(default=None, description="New full name.")


@strawberry.type(description="Result of createCustomer.")
class CreateCustomerPayload:
    customer: Customer | None = strawberry.field(
        description="The created customer, or null if userErrors is not empty."
    )
    user_errors: list[UserError] = strawberry.field(description="Why the input was refused; empty on success.")


@strawberry.type(description="Result of updateCustomer.")
class UpdateCustomerPayload:
    customer: Customer | None = strawberry.field(
        description="The updated customer, or null if userErrors is not empty."
    )
    user_errors: list[UserError] = strawberry.field(description="Why the input was refused; empty on success.")


@strawberry.type
class CustomerMutation:
    @strawberry.mutation(description="Create a customer.", directives=[requires(CUSTOMERS_WRITE)])
    async def create_customer(self, info: Info, input: CreateCustomerInput) -> CreateCustomerPayload:
        try:
            row = await create_customer(info.context.store, CustomerChanges(email=input.email, name=input.name))
        except INPUT_ERRORS as error:
            return CreateCustomerPayload(customer=None, user_errors=user_errors(error))
        return CreateCustomerPayload(customer=Customer.from_row(row), user_errors=[])

    @strawberry.mutation(
        description="Change a customer's name or email (a customer may change its own). An erased customer "
        "cannot be changed: INVALID_STATE on `id`.",
        directives=[requires(CUSTOMERS_WRITE, ROLE_CUSTOMER)],
    )
    async def update_customer(self, info: Info, input: UpdateCustomerInput) -> UpdateCustomerPayload:
        try:
            pk = decode_typed_id(input.id, "Customer")
            act_for_customer(info.context.principal, pk, CUSTOMERS_WRITE, "update a customer")
            row = await update_customer(info.context.store, pk, CustomerChanges(email=input.email, name=input.name))
        except INPUT_ERRORS as error:
            return UpdateCustomerPayload(customer=None, user_errors=user_errors(error))
        return UpdateCustomerPayload(customer=Customer.from_row(row), user_errors=[])
