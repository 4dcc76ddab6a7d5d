"""The GraphQL schema: Strawberry types per domain, composed by `build_schema()`.

Resolvers here are thin: decode arguments, call `resolvers/` (loaders and business logic), convert rows to
types. Nothing here imports `gateway`.
"""

from schema.build import build_schema

__all__ = ["build_schema"]
