"""`AuditLog`: write one `audit_event` row per mutation field an operation ran, whatever its outcome.

The rows are written after execution, in a transaction of their own on the request's store session: each
mutation has committed or rolled back its own transactions by then, so an attempt that failed, was refused
(FORBIDDEN) or answered userErrors is recorded as well as one that succeeded, and an audit write can never
roll a mutation back. The trade-off: a process that dies between a mutation's commit and this write loses
that row (a cancelled request still writes it). When the write itself fails (the store went away) the
entries are logged at ERROR level, with the same fields, and the mutation's answer stands.

Operations refused before execution (parse, validation, variables, limits, authentication, rate limit) run
no mutation and are not audited.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

from strawberry.extensions import SchemaExtension

from resolvers.audit.log import AuditEntry, record
from schema.audit.trail import collecting

logger = logging.getLogger("schema.audit")


class AuditLog(SchemaExtension):
    async def on_execute(self) -> AsyncIterator[None]:
        closed = False
        with collecting() as trail:
            try:
                yield
            except GeneratorExit:  # abandoned, never resumed: nothing may be awaited any more
                closed = True
                raise
            finally:
                if trail and not closed:
                    await self._write(trail)  # an error or a cancellation is no reason to lose the record

    async def _write(self, trail: list[AuditEntry]) -> None:
        try:
            await record(self.execution_context.context.store, trail)
        except Exception:
            logger.exception("%d audit event(s) not stored; each follows", len(trail))
            for entry in trail:
                logger.error("audit event not stored: %r", entry)
