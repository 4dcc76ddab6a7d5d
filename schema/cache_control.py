"""`@cacheControl`: how long a response that touches a type or field may be cached, and by whom.

The same vocabulary as Apollo Server's directive, so clients and tools read it the same way:

- `maxAge` (seconds) on a type applies to every field returning that type; on a field it wins over the type's.
- `scope: PRIVATE` makes any response touching it per-principal (never shared between users).
- `inheritMaxAge: true` takes the parent field's maxAge instead (for wrappers such as connections and Money).
- Leaf fields (scalars, enums) inherit their parent. A root field or an object field with no hint gets the
  gateway's default (0 unless configured): not cacheable.

The gateway reads these hints from the built schema (`gateway/cache_policy.py`); the resolvers never see them.
"""

from __future__ import annotations

from enum import Enum

import strawberry
from strawberry.schema_directive import Location
from strawberry.types.unset import UNSET


@strawberry.enum(description="Who may reuse a cached response.")
class CacheControlScope(Enum):
    PUBLIC = "PUBLIC"
    PRIVATE = "PRIVATE"


@strawberry.schema_directive(
    name="cacheControl",
    locations=[Location.OBJECT, Location.FIELD_DEFINITION, Location.INTERFACE, Location.UNION],
    description="How long responses touching this type or field may be cached, and whether per principal only.",
)
class CacheControl:
    max_age: int | None = strawberry.directive_field(name="maxAge", default=UNSET)
    scope: CacheControlScope | None = UNSET
    inherit_max_age: bool | None = strawberry.directive_field(name="inheritMaxAge", default=UNSET)


INHERIT = CacheControl(inherit_max_age=True)
"""For wrapper types (connections, edges, Money): as cacheable as whatever returned them."""

PRIVATE = CacheControl(scope=CacheControlScope.PRIVATE)
"""For personal data: responses touching it are cached per principal only."""


def max_age(seconds: int, *, private: bool = False) -> CacheControl:
    return CacheControl(max_age=seconds, scope=CacheControlScope.PRIVATE if private else UNSET)
