"""Business logic and per-request loaders. Knows the store, not Strawberry or Starlette."""
