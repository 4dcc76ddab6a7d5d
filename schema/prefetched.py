"""Fields whose value a look-ahead may have loaded already (`Order.prefetch`).

Such a field's resolver answers the attribute the look-ahead set, and loads only when it is unset (None). Declaring
it (`metadata=prefetched("loaded_customer")`) lets the executor read the attribute directly, as it reads a plain
field, and call the resolver only when there is nothing there.
"""

from __future__ import annotations

from typing import Any

from strawberry.types.field import StrawberryField

PREFETCHED = "gateway.prefetched"


def prefetched(attribute: str) -> dict[str, str]:
    """Field metadata: the resolver returns `source.<attribute>` whenever it is not None."""
    return {PREFETCHED: attribute}


def prefetched_attribute(field: StrawberryField) -> str | None:
    value: Any = field.metadata.get(PREFETCHED) if field.metadata else None
    return value if isinstance(value, str) else None
