"""Every loader a request may use, created per request (each when first used) so caches never outlive it.

Observers (`observe_batches`) hear of every batch a loader runs: the loader's class name and the number of keys.
Scopes (`scope_batches`) are context managers entered around each batch with the same two values, so what happens
inside it (its SQL, its upstream calls) happens within them; the gateway's tracing opens a span in one.
When neither is installed, loaders run their batch functions as they are.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager, ExitStack
from functools import cached_property
from typing import Any, TypeVar, cast

from aiodataloader import DataLoader

from integrations.store.session import StoreSession
from resolvers.batching import Primer
from resolvers.customer.loaders import CustomerByIdLoader
from resolvers.order.loaders import (
    EmailsByOrderIdLoader,
    OrderByIdLoader,
    OrderCountByCustomerIdLoader,
    OrderLinesByOrderIdLoader,
    OrdersByCustomerIdLoader,
    OrderWithCustomerByIdLoader,
)
from resolvers.payment.loaders import PaymentByOrderIdLoader, ProviderPaymentByReferenceLoader
from resolvers.product.loaders import ProductByIdLoader
from resolvers.services import Services

BatchObserver = Callable[[str, int], None]
BatchScope = Callable[[str, int], AbstractContextManager[object]]
L = TypeVar("L", bound=DataLoader[Any, Any])
_observers: list[BatchObserver] = []
_scopes: list[BatchScope] = []


def observe_batches(observer: BatchObserver) -> Callable[[], None]:
    """Tell `observer` about every batch of every request's loaders; returns the function that stops it."""
    _observers.append(observer)
    return lambda: _observers.remove(observer)


def scope_batches(scope: BatchScope) -> Callable[[], None]:
    """Run every batch of every request's loaders inside `scope(loader_name, number_of_keys)`; returns the function that
    stops it. A loader made while no observer or scope was installed runs its batches as they are."""
    _scopes.append(scope)
    return lambda: _scopes.remove(scope)


def _observed(cls: type[L]) -> type[L]:
    """`cls` with its batches observed and scoped: a subclass of the same name, made once per class. A wrapper set on
    each loader instead would be a function held by the loader that holds the loader, a reference cycle: everything
    the request's loaders read would then wait for the cyclic garbage collector, which cost about a sixth of a small
    query's time."""
    observed = _observed_classes.get(cls)
    if observed is None:
        namespace = {
            "batch_load_fn": _observed_batch_load_fn,
            "_unobserved_batch_load_fn": cls.batch_load_fn,  # type: ignore[misc]  # a method (typed as an attribute)
            "__module__": cls.__module__,
            "__qualname__": cls.__qualname__,
        }
        observed = _observed_classes[cls] = type(cls.__name__, (cls,), namespace)
    return cast("type[L]", observed)


_observed_classes: dict[type[Any], type[Any]] = {}


async def _observed_batch_load_fn(loader: Any, keys: list[Any]) -> Any:
    run = type(loader)._unobserved_batch_load_fn
    name = type(loader).__name__
    size = len(keys)
    for observer in tuple(_observers):
        observer(name, size)
    scopes = tuple(_scopes)
    if not scopes:
        return await run(loader, keys)
    with ExitStack() as stack:
        for scope in scopes:
            stack.enter_context(scope(name, size))
        return await run(loader, keys)


class Loaders:
    """The request's loaders, each created when first used: a request reads through two or three of them, and
    creating all ten cost about a tenth of a small query's time."""

    def __init__(self, store: StoreSession, services: Services) -> None:
        self._store = store
        self._services = services
        self._created: list[DataLoader[Any, Any]] = []
        self._primer = Primer(OrderWithCustomerByIdLoader.primes)

    @classmethod
    def create(cls, store: StoreSession, services: Services) -> Loaders:
        return cls(store, services)

    @cached_property
    def customer_by_id(self) -> CustomerByIdLoader:
        return self._made(CustomerByIdLoader, self._store)

    @cached_property
    def product_by_id(self) -> ProductByIdLoader:
        return self._made(ProductByIdLoader, self._store)

    @cached_property
    def order_by_id(self) -> OrderByIdLoader:
        return self._made(OrderByIdLoader, self._store)

    @cached_property
    def order_with_customer_by_id(self) -> OrderWithCustomerByIdLoader:
        return self._made(OrderWithCustomerByIdLoader, self._store, self._primer)

    @cached_property
    def order_lines_by_order_id(self) -> OrderLinesByOrderIdLoader:
        return self._made(OrderLinesByOrderIdLoader, self._store)

    @cached_property
    def orders_by_customer_id(self) -> OrdersByCustomerIdLoader:
        return self._made(OrdersByCustomerIdLoader, self._store)

    @cached_property
    def order_count_by_customer_id(self) -> OrderCountByCustomerIdLoader:
        return self._made(OrderCountByCustomerIdLoader, self._store)

    @cached_property
    def emails_by_order_id(self) -> EmailsByOrderIdLoader:
        return self._made(EmailsByOrderIdLoader, self._store)

    @cached_property
    def payment_by_order_id(self) -> PaymentByOrderIdLoader:
        return self._made(PaymentByOrderIdLoader, self._store)

    @cached_property
    def provider_payment_by_reference(self) -> ProviderPaymentByReferenceLoader:
        return self._made(ProviderPaymentByReferenceLoader, self._services)

    def all(self) -> list[DataLoader[Any, Any]]:
        """The loaders created so far."""
        return list(self._created)

    def forget(self) -> None:
        """Drop every loader's cached results (after a write: the loaders hold read-only copies of rows)."""
        for loader in self._created:
            loader.clear_all()
        self._primer.forget()

    def _made(self, cls: type[L], *arguments: Any) -> L:
        loader = (_observed(cls) if _observers or _scopes else cls)(*arguments)
        self._created.append(loader)
        self._primer.made(cls, loader)
        return loader
