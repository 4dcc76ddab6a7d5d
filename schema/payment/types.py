from __future__ import annotations

from datetime import datetime

import strawberry

from integrations.payments.base import ProviderPayment
from integrations.store import models
from schema.cache_control import max_age
from schema.ids import encode_id
from schema.money import Money

PaymentStatus = strawberry.enum(
    models.PaymentStatus, name="PaymentStatus", description="Where a payment is at the provider."
)


@strawberry.type(
    description="An order's payment, as the payment provider currently reports it.",
    directives=[max_age(10, private=True)],
)
class Payment:
    id: strawberry.ID = strawberry.field(description="Opaque ID of the gateway's record of this payment.")
    provider: str = strawberry.field(description='Which provider holds the payment: "stripe" or "local".')
    reference: str | None = strawberry.field(
        description="The provider's own id (e.g. a Stripe PaymentIntent id); null until the provider has one."
    )
    status: PaymentStatus = strawberry.field(description="Current status.")  # type: ignore[valid-type]
    amount: Money = strawberry.field(description="Amount charged (or to be charged).")
    refunded: Money = strawberry.field(description="Amount refunded so far.")
    created_at: datetime = strawberry.field(description="When the payment was created.")
    failure_message: str | None = strawberry.field(description="Why the payment failed, when it did.")

    @classmethod
    def from_row(cls, row: models.Payment) -> Payment:
        """From the gateway's record alone (the provider has not been reached for this payment)."""
        assert row.id is not None
        return cls(
            id=strawberry.ID(encode_id("Payment", row.id)),
            provider=row.provider,
            reference=row.reference,
            status=models.PaymentStatus(row.status),
            amount=Money(amount=row.amount, currency=row.currency),
            refunded=Money(amount=row.refunded, currency=row.currency),
            created_at=row.created_at,
            failure_message=row.failure_message,
        )

    @classmethod
    def from_provider(cls, row: models.Payment, payment: ProviderPayment) -> Payment:
        assert row.id is not None
        return cls(
            id=strawberry.ID(encode_id("Payment", row.id)),
            provider=row.provider,
            reference=payment.reference,
            status=payment.status,
            amount=Money(amount=payment.amount, currency=payment.currency),
            refunded=Money(amount=payment.amount_refunded, currency=payment.currency),
            created_at=payment.created_at,
            failure_message=payment.failure_message,
        )
