"""Loaders for payments: the gateway's own rows from the store, the provider's view through the cache."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from aiodataloader import DataLoader
from sqlmodel import col, select

from integrations.payments.base import ProviderPayment
from integrations.store.models import Payment
from resolvers.batching import MAX_BATCH_SIZE, BatchLoader, one_per_key
from resolvers.payment import cache
from resolvers.services import Services

MAX_CONCURRENT_LOOKUPS = 8
"""Provider calls one batch may have in flight; the upstream's bulkhead bounds the whole process."""


class PaymentByOrderIdLoader(BatchLoader[int, Payment | None]):
    async def batch_load_fn(self, keys: Sequence[int]) -> list[Payment | None]:
        rows = await self.store.scalars(select(Payment).where(col(Payment.order_id).in_(keys)))
        return one_per_key(keys, rows, lambda row: row.order_id)


class ProviderPaymentByReferenceLoader(DataLoader[str, ProviderPayment]):
    """The provider's current view of payments, deduplicated per request and cached briefly across requests.

    A cold page of 50 orders costs one provider call per distinct payment (at most `MAX_CONCURRENT_LOOKUPS`
    at a time); a warm one costs none. A failed lookup fails only its own key: the resolver turns it into a
    coded error on that field while the rest of the response is served.
    """

    def __init__(self, services: Services) -> None:
        super().__init__(max_batch_size=MAX_BATCH_SIZE)
        self.services = services

    # aiodataloader fails the key of an Exception value (its stubs only say list[V]).
    async def batch_load_fn(self, keys: Sequence[str]) -> list[ProviderPayment | Exception]:  # type: ignore[override]
        provider = self.services.payments
        cache_keys = [cache.cache_key(provider.name, key) for key in keys]
        cached = await self.services.cache.get_many(cache_keys)
        found: dict[str, ProviderPayment | Exception] = {}
        for key, raw in zip(keys, cached, strict=True):
            payment = cache.load(raw) if raw is not None else None
            if payment is not None:
                found[key] = payment
        missing = [key for key in keys if key not in found]
        limit = asyncio.Semaphore(MAX_CONCURRENT_LOOKUPS)

        async def fetch(reference: str) -> None:
            async with limit:
                try:
                    payment = await provider.retrieve_payment(reference)
                except Exception as exc:  # reported per key: one failed payment must not fail the page
                    found[reference] = exc
                    return
            found[reference] = payment
            await self.services.cache.set(
                cache.cache_key(provider.name, reference), cache.dump(payment), self.services.payment_cache_ttl
            )

        await asyncio.gather(*(fetch(reference) for reference in missing))
        return [found[key] for key in keys]
