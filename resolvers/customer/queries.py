from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Select, func
from sqlmodel import select

from integrations.store.models import Customer
from resolvers import validation


@dataclass(frozen=True)
class CustomerFilter:
    email_contains: str | None = None
    name_contains: str | None = None


def customers_statement(where: CustomerFilter) -> Select[Customer]:
    """Customers matching `where` (case-insensitive substring matches; `%` and `_` match literally)."""
    statement = select(Customer)
    if where.email_contains:
        needle = validation.search("emailContains", where.email_contains).lower()
        statement = statement.where(func.lower(Customer.email).contains(needle, autoescape=True))
    if where.name_contains:
        needle = validation.search("nameContains", where.name_contains).lower()
        statement = statement.where(func.lower(Customer.name).contains(needle, autoescape=True))
    return statement
