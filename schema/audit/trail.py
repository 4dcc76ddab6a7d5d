"""Observe every root mutation field: who ran it, on what, and how it ended, for the audit log.

`audit_mutations` wraps the resolver of each field of the Mutation type once, when the schema is built and after
`schema.permissions.enforce`, so a refusal by `@requires` is observed like any other outcome. While an
`AuditLog` extension is collecting (`collecting()`), each call appends one `AuditEntry`; otherwise the wrapper
only passes the call through. Outcomes:

- ``OK``: the payload has no `userErrors`; ``USER_ERRORS``: it has some (their codes are kept);
- ``FORBIDDEN``: a `ForbiddenError` (the `@requires` guard or a rule in the resolver);
- ``ERROR``: anything else raised, with the code the client sees (`gateway/errors.py`'s mapping).

Targets are the global IDs the arguments name (arguments and input fields called ``id`` or ``…Id``, not lists)
and the IDs of the `Node`s the payload returns; only values that decode to an ID of a known object type are
kept, re-encoded, so no free text a client sent can reach the log.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Awaitable, Callable, Iterator
from contextvars import ContextVar
from datetime import datetime
from inspect import isawaitable
from typing import Any

from graphql import GraphQLError, GraphQLObjectType, GraphQLResolveInfo, GraphQLSchema, default_field_resolver

from integrations.errors import ErrorCode, GatewayError, StoreUnavailableError, UserInputError
from integrations.store.models import AuditOutcome
from integrations.store.types import utcnow
from resolvers.access.principal import Principal
from resolvers.audit.log import AuditEntry
from schema.ids import decode_id, encode_id
from schema.node import Node

INTERNAL = "INTERNAL_SERVER_ERROR"
SERVICE_UNAVAILABLE = "SERVICE_UNAVAILABLE"
_ID_NAME = re.compile(r"id|.*_id|.*[a-z]Id")

_TRAIL: ContextVar[list[AuditEntry] | None] = ContextVar("gateway_audit_trail", default=None)


@contextlib.contextmanager
def collecting() -> Iterator[list[AuditEntry]]:
    """Gather an entry per mutation field resolved in this context."""
    trail: list[AuditEntry] = []
    token = _TRAIL.set(trail)
    try:
        yield trail
    finally:
        _TRAIL.reset(token)


def audit_mutations(schema: GraphQLSchema) -> None:
    """Wrap every root mutation field's resolver (call once per schema, after `enforce`)."""
    if schema.mutation_type is None:
        return
    for name, field in schema.mutation_type.fields.items():
        field.resolve = _audited(field.resolve or default_field_resolver, name)


def _audited(resolve: Callable[..., Any], mutation: str) -> Callable[..., Any]:
    def audited(source: Any, info: GraphQLResolveInfo[Any], **args: Any) -> Any:
        trail = _TRAIL.get()
        if trail is None:
            return resolve(source, info, **args)
        started = utcnow()
        named = _argument_targets(info.schema, args)

        def note(outcome: AuditOutcome, codes: tuple[str, ...], returned: tuple[str, ...] = ()) -> None:
            trail.append(_entry(info, mutation, started, outcome, codes, named + returned))

        try:
            result = resolve(source, info, **args)
        except Exception as error:
            note(*failure(error))
            raise
        if isawaitable(result):
            return _settle(result, note)
        note(*success(result))
        return result

    return audited


async def _settle(result: Awaitable[Any], note: Callable[..., None]) -> Any:
    try:
        value = await result
    except Exception as error:
        note(*failure(error))
        raise
    note(*success(value))
    return value


def success(payload: object) -> tuple[AuditOutcome, tuple[str, ...], tuple[str, ...]]:
    """The outcome, codes and returned object IDs of the payload a mutation answered with."""
    fields = vars(payload) if hasattr(payload, "__dict__") else {}
    returned = tuple(str(value.id) for value in fields.values() if isinstance(value, Node))
    codes = tuple(str(getattr(error, "code", ErrorCode.INVALID)) for error in fields.get("user_errors") or ())
    return (AuditOutcome.USER_ERRORS if codes else AuditOutcome.OK), codes, returned


def failure(error: BaseException) -> tuple[AuditOutcome, tuple[str, ...]]:
    """The outcome and code of an exception a mutation raised (the code its GraphQL error carries)."""
    if isinstance(error, GatewayError) and error.code is ErrorCode.FORBIDDEN:
        return AuditOutcome.FORBIDDEN, (ErrorCode.FORBIDDEN.value,)
    if isinstance(error, StoreUnavailableError):
        return AuditOutcome.ERROR, (SERVICE_UNAVAILABLE,)
    if isinstance(error, GatewayError):
        return AuditOutcome.ERROR, (error.code.value,)
    if isinstance(error, GraphQLError):
        code = (error.extensions or {}).get("code")
        return AuditOutcome.ERROR, (code if isinstance(code, str) else INTERNAL,)
    return AuditOutcome.ERROR, (INTERNAL,)


def _entry(
    info: GraphQLResolveInfo[Any],
    mutation: str,
    started: datetime,
    outcome: AuditOutcome,
    codes: tuple[str, ...],
    targets: tuple[str, ...],
) -> AuditEntry:
    principal: Principal = getattr(info.context, "principal", None) or Principal.anonymous()
    operation = info.operation.name
    return AuditEntry(
        created_at=started,
        actor_kind=principal.kind.value,
        actor=principal.subject,
        mutation=mutation,
        operation_name=operation.value if operation is not None else None,
        outcome=outcome,
        targets=targets,
        codes=codes,
    )


def _argument_targets(schema: GraphQLSchema, args: dict[str, Any]) -> tuple[str, ...]:
    """Global IDs in ID-named arguments and in ID-named fields of input-object arguments (lists are skipped)."""
    found = _named_ids(schema, args)
    for value in args.values():
        if isinstance(value, dict):
            found += _named_ids(schema, value)
        elif hasattr(value, "__dict__"):
            found += _named_ids(schema, vars(value))
    return tuple(found)


def _named_ids(schema: GraphQLSchema, fields: dict[str, Any]) -> list[str]:
    return [gid for name, value in fields.items() if _ID_NAME.fullmatch(name) and (gid := _known_id(schema, value))]


def _known_id(schema: GraphQLSchema, value: object) -> str | None:
    """`value` as a canonical global ID, if it is the ID of an object type implementing Node; else None."""
    if not isinstance(value, str):
        return None
    try:
        type_name, pk = decode_id(value)
    except UserInputError:
        return None
    type_ = schema.get_type(type_name)
    if not isinstance(type_, GraphQLObjectType) or not any(i.name == "Node" for i in type_.interfaces):
        return None
    return encode_id(type_name, pk)
