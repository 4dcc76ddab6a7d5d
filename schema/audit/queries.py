from __future__ import annotations

from datetime import datetime

import strawberry

from integrations.store import models
from resolvers.access.rules import AUDIT_READ
from resolvers.audit.log import AuditFilter, audit_events_statement
from schema.audit.types import AuditEvent, AuditOutcome
from schema.context import Info
from schema.lookup import connection
from schema.pagination import After, Before, Connection, First, Last
from schema.permissions import requires


@strawberry.input(description="Narrow the audit log; all given conditions must hold.")
class AuditEventFilter:
    actor: str | None = strawberry.field(default=None, description="Exactly this actor (a subject or apikey:<id>).")
    mutation: str | None = strawberry.field(default=None, description='Exactly this mutation, e.g. "eraseCustomer".')
    outcome: AuditOutcome | None = strawberry.field(default=None, description="Only this outcome.")  # type: ignore[valid-type]
    since: datetime | None = strawberry.field(
        default=None, description="Events at or after this time (with a time zone offset)."
    )
    until: datetime | None = strawberry.field(
        default=None, description="Events before this time (with a time zone offset)."
    )


@strawberry.type
class AuditQuery:
    @strawberry.field(
        description="The audit log, oldest first (`last` gives the newest), optionally filtered. Never cached.",
        directives=[requires(AUDIT_READ)],
    )
    async def audit_events(
        self,
        info: Info,
        first: First = None,
        after: After = None,
        last: Last = None,
        before: Before = None,
        filter: AuditEventFilter | None = None,
    ) -> Connection[AuditEvent] | None:
        where = (
            AuditFilter()
            if filter is None
            else AuditFilter(filter.actor, filter.mutation, filter.outcome, filter.since, filter.until)
        )
        return await connection(
            info,
            audit_events_statement(where),
            models.AuditEvent.id,
            AuditEvent.from_row,
            first=first,
            after=after,
            last=last,
            before=before,
        )
