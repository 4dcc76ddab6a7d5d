"""Every loader a request may use, created together per request so caches never outlive it."""

from __future__ import annotations

from dataclasses import dataclass

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
