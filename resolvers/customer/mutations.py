"""Create and update customers: validated input, constraint violations reported as `UserInputError`s."""

from __future__ import annotations

from dataclasses import dataclass

from integrations.errors import ErrorCode, InputErrors, UserInputError
from integrations.store.models import EMAIL_MAX, NAME_MAX, Customer
from integrations.store.session import StoreSession
from resolvers import validation
from resolvers.customer.data import is_erased
from resolvers.integrity import not_found, reporting_duplicates


@dataclass(frozen=True)
class CustomerChanges:
    """Fields to set; None leaves a field as it is."""

    email: str | None = None
    name: str | None = None


def _clean(changes: CustomerChanges) -> CustomerChanges:
    check = validation.Collector()
    email = name = None
    if changes.email is not None:
        email = check(validation.email, "email", changes.email, max_length=EMAIL_MAX)
    if changes.name is not None:
        name = check(validation.text, "name", changes.name, max_length=NAME_MAX)
    check.raise_if_any()
    return CustomerChanges(email=email, name=name)


async def create_customer(store: StoreSession, changes: CustomerChanges) -> Customer:
    required = [
        UserInputError(field, f"{field} is required", code=ErrorCode.REQUIRED)
        for field in ("email", "name")
        if getattr(changes, field) is None
    ]
    if required:
        raise InputErrors(required)
    clean = _clean(changes)
    assert clean.email is not None
    assert clean.name is not None
    customer = Customer(email=clean.email, name=clean.name)
    with reporting_duplicates("customer", "email"):
        async with store.transaction() as session:
            session.add(customer)
    return customer


async def update_customer(store: StoreSession, customer_id: int, changes: CustomerChanges) -> Customer:
    clean = _clean(changes)
    with reporting_duplicates("customer", "email"):
        async with store.transaction() as session:
            # Locked (on PostgreSQL; SQLite has one writer): an erasure committing between this read and the write
            # would otherwise be undone by it.
            customer = await session.get(Customer, customer_id, populate_existing=True, with_for_update=True)
            if customer is None:
                raise not_found("customer")
            if is_erased(customer):  # its personal data is gone for good: nothing may bring it back
                message = "this customer's personal data was erased; the customer can no longer be changed"
                raise InputErrors([UserInputError("id", message, code=ErrorCode.INVALID_STATE)])
            if clean.email is not None:
                customer.email = clean.email
            if clean.name is not None:
                customer.name = clean.name
    return customer
