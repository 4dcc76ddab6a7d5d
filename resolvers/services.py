"""Long-lived collaborators of the business logic, created once by the server and shared by every request."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from integrations.cache.base import Cache
from integrations.payments.base import PaymentProvider


@dataclass(frozen=True)
class Services:
    sessionmaker: async_sessionmaker[AsyncSession]
    """For work that must not share the request's session (short transactions, polling for fresh rows)."""
    payments: PaymentProvider
    cache: Cache
    payment_cache_ttl: float = 15.0
    """How long provider payment data may be served from the cache."""
    payment_lease: float = 60.0
    """How long one request may talk to the provider about a payment before another may take over."""
    email_domain: str = "gateway.local"
    """Right-hand side of generated Message-IDs."""
    shop_name: str = "Gateway Shop"
    """How emails sign off."""
