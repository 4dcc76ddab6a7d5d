"""Every loader a request may use, created together per request so caches never outlive it.

Observers (`observe_batches`) hear of every batch a loader runs: the loader's class name and the number of keys.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any

from aiodataloader import DataLoader

from integrations.store.session import StoreSession
from resolvers.customer.loaders import CustomerByIdLoader
from resolvers.order.loaders import (
    EmailsByOrderIdLoader,
    OrderByIdLoader,
    OrderCountByCustomerIdLoader,
    OrderLinesByOrderIdLoader,
    OrdersByCustomerIdLoader,
)
from resolvers.payment.loaders import PaymentByOrderIdLoader, ProviderPaymentByReferenceLoader
from resolvers.product.loaders import ProductByIdLoader
from resolvers.services import Services

BatchObserver = Callable[[str, int], None]
_observers: list[BatchObserver] = []


def observe_batches(observer: BatchObserver) -> Callable[[], None]:
    """Tell `observer` about every batch of every request's loaders; returns the function that stops it."""
    _observers.append(observer)
    return lambda: _observers.remove(observer)


def _observed(loader: DataLoader[Any, Any]) -> None:
    run = loader.batch_load_fn
    name = type(loader).__name__

    async def batch_load_fn(keys: list[Any]) -> Any:
        for observer in _observers:
            observer(name, len(keys))
        return await run(keys)

    loader.batch_load_fn = batch_load_fn


@dataclass(frozen=True)
class Loaders:
    customer_by_id: CustomerByIdLoader
    product_by_id: ProductByIdLoader
    order_by_id: OrderByIdLoader
    order_lines_by_order_id: OrderLinesByOrderIdLoader
    orders_by_customer_id: OrdersByCustomerIdLoader
    order_count_by_customer_id: OrderCountByCustomerIdLoader
    emails_by_order_id: EmailsByOrderIdLoader
    payment_by_order_id: PaymentByOrderIdLoader
    provider_payment_by_reference: ProviderPaymentByReferenceLoader

    @classmethod
    def create(cls, store: StoreSession, services: Services) -> Loaders:
        loaders = cls._create(store, services)
        if _observers:
            for loader in fields(loaders):
                _observed(getattr(loaders, loader.name))
        return loaders

    @classmethod
    def _create(cls, store: StoreSession, services: Services) -> Loaders:
        return cls(
            customer_by_id=CustomerByIdLoader(store),
            product_by_id=ProductByIdLoader(store),
            order_by_id=OrderByIdLoader(store),
            order_lines_by_order_id=OrderLinesByOrderIdLoader(store),
            orders_by_customer_id=OrdersByCustomerIdLoader(store),
            order_count_by_customer_id=OrderCountByCustomerIdLoader(store),
            emails_by_order_id=EmailsByOrderIdLoader(store),
            payment_by_order_id=PaymentByOrderIdLoader(store),
            provider_payment_by_reference=ProviderPaymentByReferenceLoader(services),
        )
