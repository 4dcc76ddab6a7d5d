"""Every loader a request may use, created together per request so caches never outlive it.

Observers (`observe_batches`) hear of every batch a loader runs: the loader's class name and the number of keys.
Scopes (`scope_batches`) are context managers entered around each batch with the same two values, so what happens
inside it (its SQL, its upstream calls) happens within them; the gateway's tracing opens a span in one.
When neither is installed, loaders run their batch functions as they are.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager, ExitStack
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
BatchScope = Callable[[str, int], AbstractContextManager[object]]
_observers: list[BatchObserver] = []
_scopes: list[BatchScope] = []


def observe_batches(observer: BatchObserver) -> Callable[[], None]:
    """Tell `observer` about every batch of every request's loaders; returns the function that stops it."""
    _observers.append(observer)
    return lambda: _observers.remove(observer)


def scope_batches(scope: BatchScope) -> Callable[[], None]:
    """Run every batch of every request's loaders inside `scope(loader_name, number_of_keys)`; returns the function that
    stops it. Loaders created before keep what they had."""
    _scopes.append(scope)
    return lambda: _scopes.remove(scope)


def _observed(loader: DataLoader[Any, Any]) -> None:
    run = loader.batch_load_fn
    name = type(loader).__name__
    scopes = tuple(_scopes)

    async def batch_load_fn(keys: list[Any]) -> Any:
        size = len(keys)
        for observer in _observers:
            observer(name, size)
        if not scopes:
            return await run(keys)
        with ExitStack() as stack:
            for scope in scopes:
                stack.enter_context(scope(name, size))
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

    def all(self) -> list[DataLoader[Any, Any]]:
        return [getattr(self, field.name) for field in fields(self)]

    def forget(self) -> None:
        """Drop every loader's cached results (after a write: the loaders hold read-only copies of rows)."""
        for loader in self.all():
            loader.clear_all()

    @classmethod
    def create(cls, store: StoreSession, services: Services) -> Loaders:
        loaders = cls._create(store, services)
        if _observers or _scopes:
            for loader in loaders.all():
                _observed(loader)
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
