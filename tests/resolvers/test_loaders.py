"""A request's loaders are created when first used; `forget` drops what the created ones hold."""

from __future__ import annotations

from typing import cast

from sqlalchemy.ext.asyncio import AsyncEngine

from integrations.store.session import StoreSession
from resolvers.loaders import Loaders, observe_batches
from resolvers.seed import SeedSize, seed
from resolvers.services import Services
from tests.conftest import StatementCounter


async def test_loaders_are_made_on_first_use_and_forget_what_they_hold(
    engine: AsyncEngine, store: StoreSession
) -> None:
    await seed(store, SeedSize(customers=2, products=1, orders=1, lines_per_order=1))
    loaders = Loaders.create(store, cast(Services, None))  # no loader here needs the services
    assert loaders.all() == []
    batches: list[tuple[str, int]] = []
    stop = observe_batches(lambda name, size: batches.append((name, size)))  # after the set, before first use
    counter = StatementCounter(engine)
    try:
        customers = loaders.customer_by_id
        assert loaders.customer_by_id is customers
        assert loaders.all() == [customers]
        assert (await customers.load(1)) is not None
        assert (await customers.load(1)) is not None  # held
        assert counter.count == 1
        loaders.forget()
        assert (await customers.load(1)) is not None  # read again
        assert counter.count == 2
    finally:
        stop()
        counter.stop()
    assert batches == [("CustomerByIdLoader", 1), ("CustomerByIdLoader", 1)]
