"""The payment provider interface and the dataclasses that cross it.

A provider creates and confirms a payment, reads it back, cancels it and refunds it. A declined card is an
outcome (a `ProviderPayment` with status FAILED), not an exception; exceptions mean the call itself failed:
`UpstreamUnavailableError` (code PAYMENT_PROVIDER_UNAVAILABLE) when the provider cannot answer,
`UserInputError` when it refused what the client asked for (unknown payment method, refund too large), and
`UpstreamError` for other refusals.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from integrations.store.models import PaymentStatus

__all__ = ["PaymentProvider", "PaymentRequest", "PaymentStatus", "ProviderPayment", "ProviderRefund", "status_of"]


@dataclass(frozen=True)
class PaymentRequest:
    amount: int
    """In minor units of `currency` (cents for USD, yen for JPY)."""
    currency: str
    payment_method: str
    """A provider payment method id, e.g. Stripe's test ``pm_card_visa``."""
    idempotency_key: str
    """Derived from the client's key: the same request always carries the same key."""
    description: str = ""
    metadata: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ProviderPayment:
    reference: str
    status: PaymentStatus
    amount: int
    amount_refunded: int
    currency: str
    created_at: datetime
    failure_code: str | None = None
    failure_message: str | None = None


@dataclass(frozen=True)
class ProviderRefund:
    reference: str
    payment_reference: str
    amount: int
    currency: str
    status: str
    created_at: datetime


class PaymentProvider(Protocol):
    name: str

    async def create_payment(self, request: PaymentRequest) -> ProviderPayment:
        """Create and confirm a payment (a PaymentIntent) for `request`."""
        ...

    async def retrieve_payment(self, reference: str) -> ProviderPayment: ...

    async def cancel_payment(self, reference: str, *, idempotency_key: str) -> ProviderPayment: ...

    async def refund_payment(self, reference: str, amount: int | None, *, idempotency_key: str) -> ProviderRefund:
        """Refund `amount` (None = what is left) of a succeeded payment."""
        ...

    async def list_refunds(self, reference: str) -> list[ProviderRefund]: ...

    async def aclose(self) -> None: ...


def status_of(intent_status: str, *, failed: bool, amount: int, amount_refunded: int) -> PaymentStatus:
    """Fold a Stripe PaymentIntent status (and its refunds) into the gateway's `PaymentStatus`."""
    if intent_status == "succeeded":
        if amount_refunded >= amount > 0:
            return PaymentStatus.REFUNDED
        return PaymentStatus.PARTIALLY_REFUNDED if amount_refunded > 0 else PaymentStatus.SUCCEEDED
    if intent_status == "canceled":
        return PaymentStatus.CANCELLED
    if intent_status == "requires_action":
        return PaymentStatus.REQUIRES_ACTION
    if intent_status == "requires_payment_method" and failed:
        return PaymentStatus.FAILED
    return PaymentStatus.PROCESSING
