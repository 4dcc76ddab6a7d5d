"""`@requires(anyOf: [...])`: who may read a field or run a mutation, declared next to it, enforced in one place.

A field lists the grants of which the principal needs one (see `resolvers/access/rules.py`): scopes
(`customers:read`), roles (`role:customer`) or `owner` (the principal is the customer owning the object the
field is on: a `Customer`, or an `Order` it placed). `enforce` wraps the resolver of every declaring field
once, when the schema is built; a refused field resolves to null with a `FORBIDDEN` error at its path.
Mutations are denied by default: one without a declaration is refused to everyone but admins.
The executor's short path (`schema/executor.py`) reads some guarded fields directly: it asks `permits`, the
guard's own check, and hands a refusal back to the guard, which raises the error.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import strawberry
from graphql import GraphQLObjectType, GraphQLResolveInfo, GraphQLSchema, default_field_resolver
from strawberry.schema_directive import Location
from strawberry.types.field import StrawberryField

from integrations.errors import ForbiddenError
from resolvers.access.principal import Principal
from resolvers.access.rules import allowed

DEFINITION = "strawberry-definition"
GUARD = "gateway_guard"


@strawberry.schema_directive(
    name="requires",
    locations=[Location.FIELD_DEFINITION],
    description="The principal needs one of these grants (scope, `role:<name>` or `owner`) to read this field.",
)
class Requires:
    any_of: list[str] = strawberry.directive_field(name="anyOf")


def requires(*grants: str) -> Requires:
    return Requires(any_of=list(grants))


def declared(field: StrawberryField | None) -> tuple[str, ...] | None:
    """The grants a Strawberry field declares, or None when it declares none."""
    for directive in getattr(field, "directives", None) or ():
        if isinstance(directive, Requires):
            return tuple(directive.any_of)
    return None


def enforce(schema: GraphQLSchema) -> None:
    """Guard every declaring field's resolver, and deny undeclared mutations."""
    for type_ in schema.type_map.values():
        if not isinstance(type_, GraphQLObjectType) or type_.name.startswith("__"):
            continue
        for name, field in type_.fields.items():
            grants = declared(field.extensions.get(DEFINITION))
            if grants is None and type_ is schema.mutation_type:
                grants = ()  # deny by default
            if grants is not None:
                field.resolve = _guarded(field.resolve or default_field_resolver, grants, f"{type_.name}.{name}")


def permits(principal: Principal, grants: tuple[str, ...], source: Any) -> bool:
    """Whether `principal` may read a field declaring `grants` on `source` (whose owner, if any, it names)."""
    return allowed(principal, grants, owner=getattr(source, "owner_customer_id", None))


@dataclass(frozen=True, slots=True)
class Guard:
    """What `enforce` put in front of a field's resolver: the grants it checks and the resolver it wraps."""

    resolve: Callable[..., Any]
    grants: tuple[str, ...]


def guard_of(resolve: Callable[..., Any]) -> Guard | None:
    """The guard `enforce` put on a field's resolver, or None when it has none."""
    guard = getattr(resolve, GUARD, None)
    return guard if isinstance(guard, Guard) else None


def _guarded(resolve: Callable[..., Any], grants: tuple[str, ...], what: str) -> Callable[..., Any]:
    needs = " or ".join(grants) if grants else "an explicit permission"

    def guarded(source: Any, info: GraphQLResolveInfo[Any], **args: Any) -> Any:
        if not permits(info.context.principal, grants, source):
            raise ForbiddenError(f"Not allowed to read {what}: requires {needs}")
        return resolve(source, info, **args)

    setattr(guarded, GUARD, Guard(resolve, grants))  # for the executor, which checks `permits` itself
    return guarded
