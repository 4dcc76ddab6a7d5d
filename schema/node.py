from __future__ import annotations

import strawberry


@strawberry.interface(description="An object with a globally unique, opaque ID (Relay Global Object Identification).")
class Node:
    id: strawberry.ID = strawberry.field(description="The globally unique ID of this object; opaque to clients.")
