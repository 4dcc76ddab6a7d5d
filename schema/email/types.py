from __future__ import annotations

from datetime import datetime

import strawberry

from integrations.store import models
from schema.cache_control import max_age
from schema.ids import encode_id

EmailStatus = strawberry.enum(
    models.EmailStatus, name="EmailStatus", description="Delivery state of a transactional email."
)


@strawberry.type(
    description="A transactional email about an order, delivered from the outbox.",
    directives=[max_age(10, private=True)],
)
class EmailMessage:
    id: strawberry.ID = strawberry.field(description="Opaque ID.")
    to: str = strawberry.field(description="Recipient address.")
    subject: str = strawberry.field(description="Subject line.")
    status: EmailStatus = strawberry.field(description="PENDING until sent; FAILED after the last attempt.")  # type: ignore[valid-type]
    attempts: int = strawberry.field(description="Delivery attempts so far.")
    sent_at: datetime | None = strawberry.field(description="When the mail server accepted it.")
    last_error: str | None = strawberry.field(description="Why the last attempt failed, if it did.")

    @classmethod
    def from_row(cls, row: models.OutboxEmail) -> EmailMessage:
        assert row.id is not None
        return cls(
            id=strawberry.ID(encode_id("EmailMessage", row.id)),
            to=row.recipient,
            subject=row.subject,
            status=models.EmailStatus(row.status),
            attempts=row.attempts,
            sent_at=row.sent_at,
            last_error=row.last_error,
        )
