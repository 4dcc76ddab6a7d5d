from __future__ import annotations

import strawberry

from resolvers.money import format_money
from schema.cache_control import INHERIT


@strawberry.type(
    description="An amount of money in the minor units of its currency (cents for USD).", directives=[INHERIT]
)
class Money:
    amount: int = strawberry.field(description="Amount in minor units (e.g. 1999 is $19.99; JPY has no minor unit).")
    currency: str = strawberry.field(description="ISO 4217 currency code, e.g. USD.")

    @strawberry.field(description='The amount formatted for display, e.g. "$19.99".')
    def formatted(self) -> str:
        return format_money(self.amount, self.currency)


@strawberry.input(description="An amount of money in minor units with its ISO 4217 currency.")
class MoneyInput:
    amount: int = strawberry.field(description="Amount in minor units (e.g. 1999 is $19.99).")
    currency: str = strawberry.field(description="ISO 4217 currency code, e.g. USD.")
