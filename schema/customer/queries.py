from __future__ import annotations

import strawberry

from integrations.store import models
from resolvers.access.rules import CUSTOMERS_READ, can_read_customer
from resolvers.customer.queries import CustomerFilter as Filter
from resolvers.customer.queries import customers_statement
from schema.cache_control import max_age
from schema.context import Info
from schema.customer.types import Customer
from schema.lookup import by_global_id, connection
from schema.pagination import After, Before, Connection, First, Last
from schema.permissions import requires


@strawberry.input(description="Narrow a customer list; all given conditions must hold.")
class CustomerFilter:
    email_contains: str | None = strawberry.field(default=None, description="Email contains this text (any case).")
    name_contains: str | None = strawberry.field(default=None, description="Name contains this text (any case).")


@strawberry.type
class CustomerQuery:
    @strawberry.field(description="A customer by ID, or null if there is none.")
    async def customer(self, info: Info, id: strawberry.ID) -> Customer | None:
        principal = info.context.principal
        return await by_global_id(
            id,
            "Customer",
            info.context.loaders.customer_by_id,
            Customer.from_row,
            lambda row: row.id is not None and can_read_customer(principal, row.id),
        )

    @strawberry.field(
        description="Customers in creation order, optionally filtered.",
        directives=[max_age(60), requires(CUSTOMERS_READ)],
    )
    async def customers(
        self,
        info: Info,
        first: First = None,
        after: After = None,
        last: Last = None,
        before: Before = None,
        filter: CustomerFilter | None = None,
    ) -> Connection[Customer] | None:
        where = Filter() if filter is None else Filter(filter.email_contains, filter.name_contains)
        return await connection(
            info,
            customers_statement(where),
            models.Customer.id,
            Customer.from_row,
            first=first,
            after=after,
            last=last,
            before=before,
        )
