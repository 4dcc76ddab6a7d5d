from __future__ import annotations

from datetime import datetime

import strawberry

from integrations.store import models
from resolvers.access.principal import PrincipalKind
from schema.ids import encode_id

ActorKind = strawberry.enum(PrincipalKind, name="ActorKind", description="What kind of principal ran a mutation.")
AuditOutcome = strawberry.enum(
    models.AuditOutcome,
    name="AuditOutcome",
    description="How a mutation ended: OK, USER_ERRORS (answered userErrors), ERROR (raised a GraphQL error) or "
    "FORBIDDEN (the principal may not run it).",
)


@strawberry.type(
    description="One mutation a principal ran or tried to run. Holds no personal data: the actor is a token "
    "subject or an API key id, targets are global IDs."
)
class AuditEvent:
    id: strawberry.ID = strawberry.field(description="Opaque ID; its cursor orders events by when they were stored.")
    created_at: datetime = strawberry.field(description="When the mutation started (UTC, ISO 8601).")
    actor_kind: ActorKind = strawberry.field(description="What kind of principal ran it.")  # type: ignore[valid-type]
    actor: str | None = strawberry.field(
        description='The token\'s subject, or "apikey:<id>" for a partner key; null when anonymous.'
    )
    mutation: str = strawberry.field(description='The mutation field, e.g. "placeOrder".')
    operation_name: str | None = strawberry.field(description="The operation's name, when it had one.")
    targets: list[strawberry.ID] = strawberry.field(
        description="Global IDs of the objects the mutation named or returned, when known."
    )
    outcome: AuditOutcome = strawberry.field(description="How it ended.")  # type: ignore[valid-type]
    codes: list[str] = strawberry.field(
        description="The userErrors' codes (USER_ERRORS) or the GraphQL error's code (ERROR, FORBIDDEN)."
    )

    @classmethod
    def from_row(cls, row: models.AuditEvent) -> AuditEvent:
        assert row.id is not None
        return cls(
            id=strawberry.ID(encode_id("AuditEvent", row.id)),
            created_at=row.created_at,
            actor_kind=PrincipalKind(row.actor_kind),
            actor=row.actor,
            mutation=row.mutation,
            operation_name=row.operation_name,
            targets=[strawberry.ID(target) for target in row.targets.split()],
            outcome=models.AuditOutcome(row.outcome),
            codes=row.codes.split(),
        )
