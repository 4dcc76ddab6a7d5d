"""The principal a request acts for: built by the gateway from a token, an API key or nothing (anonymous).

Grants are what authorization checks against: the principal's scopes (`customers:read`) plus its roles written
as `role:<name>`. The `admin` role holds every grant.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cached_property

ADMIN = "admin"
CUSTOMER = "customer"
STAFF = "staff"
PARTNER = "partner"


class PrincipalKind(StrEnum):
    ANONYMOUS = "anonymous"
    USER = "user"
    """Authenticated by a JWT bearer token."""
    API_KEY = "api_key"
    """A partner service, authenticated by one of its API keys."""


@dataclass(frozen=True)
class Principal:
    kind: PrincipalKind
    subject: str | None = None
    """The token's `sub`, or `apikey:<id>`; None when anonymous."""
    roles: frozenset[str] = frozenset()
    scopes: frozenset[str] = frozenset()
    customer_id: int | None = None
    """The customer this principal is (role `customer`): what it owns."""
    client: str | None = None
    """The partner client an API key belongs to (its trusted-document policy applies)."""
    grants: frozenset[str] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "grants", self.scopes | {f"role:{role}" for role in self.roles})

    @classmethod
    def anonymous(cls, scopes: frozenset[str] = frozenset()) -> Principal:
        return cls(PrincipalKind.ANONYMOUS, scopes=scopes)

    @property
    def is_admin(self) -> bool:
        return ADMIN in self.roles

    def has(self, grant: str) -> bool:
        return self.is_admin or grant in self.grants

    def has_any(self, grants: frozenset[str] | set[str] | tuple[str, ...]) -> bool:
        return self.is_admin or not self.grants.isdisjoint(grants)

    def owns_customer(self, customer_id: int | None) -> bool:
        return self.customer_id is not None and customer_id == self.customer_id

    @cached_property  # principals are reused (verified tokens and API keys are cached): hash once
    def identity(self) -> str | None:
        """An opaque, stable id for per-principal caching and rate limiting; None when anonymous."""
        if self.subject is None:
            return None
        return hashlib.sha256(f"{self.kind}:{self.subject}".encode()).hexdigest()[:32]

    @cached_property
    def grants_digest(self) -> str:
        """Principals with the same grants (and, for customers, the same customer) see the same data that is not
        PRIVATE: shared cache entries are keyed by this."""
        canonical = "admin" if self.is_admin else " ".join(sorted(self.grants)) + f" customer:{self.customer_id}"
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]
