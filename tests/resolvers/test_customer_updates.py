"""updateCustomer against a concurrent erasure: the erasure wins, whichever commits first."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from integrations.errors import ErrorCode, InputErrors
from integrations.store.engine import create_sessionmaker
from integrations.store.models import Customer
from integrations.store.session import StoreSession
from resolvers.customer.data import ERASED_NAME, erased_email
from resolvers.customer.mutations import CustomerChanges, update_customer


# PostgreSQL only: SQLite lets one writer in at a time, so the update cannot read between the erasure's steps.
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_an_update_waiting_on_an_erasure_does_not_undo_it(engine: AsyncEngine, store: StoreSession) -> None:
    ada = Customer(email="ada@example.com", name="Ada")
    async with store.transaction() as session:
        session.add(ada)
    assert ada.id is not None
    pk = ada.id
    async with engine.connect() as eraser:
        await eraser.execute(text("SELECT id FROM customer WHERE id = :pk FOR UPDATE"), {"pk": pk})
        updater = StoreSession(create_sessionmaker(engine))
        update = asyncio.create_task(update_customer(updater, pk, CustomerChanges(name="Ada Again")))
        await asyncio.sleep(0.3)  # the update reads the customer now, while the erasure holds its row
        await eraser.execute(
            text("UPDATE customer SET name = :name, email = :email WHERE id = :pk"),
            {"name": ERASED_NAME, "email": erased_email(pk), "pk": pk},
        )
        await eraser.commit()
        with pytest.raises(InputErrors) as refused:
            await asyncio.wait_for(update, 10)
        await updater.close()
    assert [error.code for error in refused.value.errors] == [ErrorCode.INVALID_STATE]
    async with engine.connect() as connection:
        row = (await connection.execute(text("SELECT name, email FROM customer WHERE id = :pk"), {"pk": pk})).one()
    assert tuple(row) == (ERASED_NAME, erased_email(pk))
