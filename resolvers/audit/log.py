"""Write audit events and list them for auditors.

An `AuditEntry` is what the schema layer observed about one mutation; `record` stores a request's entries in a
transaction of their own, and `audit_events_statement` selects them for the `auditEvents` connection.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Select
from sqlmodel import col, select

from integrations.errors import ErrorCode, UserInputError
from integrations.store.models import AUDIT_ACTOR_MAX, AUDIT_MUTATION_MAX, NAME_MAX, AuditEvent, AuditOutcome
from integrations.store.session import StoreSession
from resolvers import validation

MAX_TARGETS = 20
"""Global IDs kept per event: a mutation names a handful; the cap bounds a hostile input's row."""


@dataclass(frozen=True)
class AuditEntry:
    """One mutation's record. Holds no personal data: an actor subject, global IDs and error codes only."""

    created_at: datetime
    actor_kind: str
    actor: str | None
    mutation: str
    operation_name: str | None
    outcome: AuditOutcome
    targets: tuple[str, ...] = ()
    codes: tuple[str, ...] = ()

    def row(self) -> AuditEvent:
        return AuditEvent(
            created_at=self.created_at,
            actor_kind=self.actor_kind,
            actor=None if self.actor is None else self.actor[:AUDIT_ACTOR_MAX],
            mutation=self.mutation[:AUDIT_MUTATION_MAX],
            operation_name=None if self.operation_name is None else self.operation_name[:NAME_MAX],
            targets=" ".join(dict.fromkeys(self.targets[:MAX_TARGETS])),
            outcome=self.outcome,
            codes=" ".join(dict.fromkeys(self.codes)),
        )


async def record(store: StoreSession, entries: Sequence[AuditEntry]) -> None:
    """Store `entries` in one transaction of their own (the mutations' transactions have ended by now)."""
    if not entries:
        return
    async with store.transaction() as session:
        session.add_all([entry.row() for entry in entries])


@dataclass(frozen=True)
class AuditFilter:
    """All given conditions must hold; `since` is inclusive, `until` exclusive (both timezone-aware)."""

    actor: str | None = None
    mutation: str | None = None
    outcome: AuditOutcome | None = None
    since: datetime | None = None
    until: datetime | None = None


def audit_events_statement(where: AuditFilter) -> Select[AuditEvent]:
    """Audit events matching `where`. Raises `UserInputError` for a timestamp without a time zone."""
    statement = select(AuditEvent)
    if where.actor is not None:
        statement = statement.where(col(AuditEvent.actor) == validation.search("filter.actor", where.actor))
    if where.mutation is not None:
        statement = statement.where(col(AuditEvent.mutation) == validation.search("filter.mutation", where.mutation))
    if where.outcome is not None:
        statement = statement.where(col(AuditEvent.outcome) == where.outcome.value)
    if where.since is not None:
        statement = statement.where(col(AuditEvent.created_at) >= _aware("filter.since", where.since))
    if where.until is not None:
        statement = statement.where(col(AuditEvent.created_at) < _aware("filter.until", where.until))
    return statement


def _aware(field: str, value: datetime) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise UserInputError(field, f"{field} needs a time zone offset (e.g. Z or +02:00)", code=ErrorCode.INVALID)
    return value
