"""Provider payment data in the cache store: short-lived, shared by every instance, dropped on change."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson

from integrations.cache.base import Cache
from integrations.payments.base import PaymentStatus, ProviderPayment


def cache_key(provider: str, reference: str) -> str:
    return f"payment:{provider}:{reference}"


def dump(payment: ProviderPayment) -> bytes:
    return orjson.dumps(payment)


def load(raw: bytes) -> ProviderPayment | None:
    """The cached payment, or None for an entry this version cannot read (treated as a miss)."""
    try:
        data: dict[str, Any] = orjson.loads(raw)
        return ProviderPayment(
            **{
                **data,
                "status": PaymentStatus(data["status"]),
                "created_at": datetime.fromisoformat(data["created_at"]),
            }
        )
    except (ValueError, TypeError, KeyError):
        return None


async def forget(cache: Cache, provider: str, reference: str | None) -> None:
    """Drop the cached copy so the next read asks the provider (after a refund, cancel or webhook)."""
    if reference:
        await cache.delete(cache_key(provider, reference))
