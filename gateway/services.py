"""Build the long-lived collaborators from settings: payment provider, cache store, email outbox worker.

Everything here is opened by the app's lifespan (or a CLI command) and closed by it; nothing below `gateway/`
reads a setting, it receives these objects instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from email.utils import parseaddr

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from strawberry import Schema

from gateway.response_cache import ResponseCache
from gateway.settings import Settings
from integrations.cache import cache_from_url
from integrations.cache.tagged import tagged_store_from_url
from integrations.cache.tagged.near import NearCachedStore
from integrations.email.backends import email_backend
from integrations.http import Upstream
from integrations.payments.base import PaymentProvider
from integrations.payments.local import LocalPaymentProvider
from integrations.payments.stripe import StripePaymentProvider, stripe_config
from resolvers.email.delivery import OutboxWorker
from resolvers.services import Services

logger = logging.getLogger("gateway.services")

_MESSAGE_ID_DOMAIN = re.compile(r"[a-z0-9](?:[a-z0-9.-]*[a-z0-9])?")
"""What a Message-ID's right-hand side may be here; anything else (an IP literal, IDN) falls back."""


def payment_provider(settings: Settings, sessionmaker: async_sessionmaker[AsyncSession]) -> PaymentProvider:
    if settings.payments_provider == "local":
        return LocalPaymentProvider(sessionmaker)
    assert settings.stripe_api_key is not None  # enforced by Settings
    config = stripe_config(
        api_key=settings.stripe_api_key.get_secret_value(),
        api_base=settings.stripe_api_base,
        api_version=settings.stripe_api_version,
        connect_timeout=settings.payments_connect_timeout,
        read_timeout=settings.payments_read_timeout,
        max_connections=settings.payments_max_connections,
        max_concurrency=settings.payments_max_concurrency,
        retries=settings.payments_retries,
        breaker_failures=settings.payments_breaker_failures,
        breaker_cooldown=settings.payments_breaker_cooldown,
    )
    return StripePaymentProvider(Upstream(config))


def payment_lease(settings: Settings) -> float:
    """Long enough for every attempt of one provider call to time out, with a margin."""
    attempt = settings.payments_connect_timeout + settings.payments_read_timeout
    return attempt * (settings.payments_retries + 1) + 5.0


def email_domain(sender: str) -> str:
    """The domain of the From address, for Message-IDs (``Shop <no-reply@shop.example>`` → ``shop.example``)."""
    address = parseaddr(sender)[1]
    domain = address.rpartition("@")[2].strip().lower()
    return domain if _MESSAGE_ID_DOMAIN.fullmatch(domain) else "gateway.local"


def outbox_worker(settings: Settings, sessionmaker: async_sessionmaker[AsyncSession]) -> OutboxWorker:
    return OutboxWorker(
        sessionmaker,
        email_backend(settings.email_url),
        sender=settings.email_from,
        max_attempts=settings.email_max_attempts,
    )


def schema_version(schema: Schema) -> str:
    """Changes whenever the schema does (types, fields, cache hints): cached responses of another shape are
    never served after a deploy."""
    return hashlib.sha256(schema.as_str().encode()).hexdigest()[:16]


@asynccontextmanager
async def response_cache(settings: Settings, schema: Schema) -> AsyncIterator[ResponseCache | None]:
    """The response cache over the tagged store (Redis when `REDIS_URL` is set), or None when it is off."""
    if not settings.response_cache:
        yield None
        return
    store = tagged_store_from_url(
        settings.redis_url,
        prefix=settings.cache_prefix,
        max_entries=settings.response_cache_entries,
        near_ttl=settings.cache_near_ttl if settings.cache_near_bytes > 0 else 0.0,
        near_max_bytes=settings.cache_near_bytes,
    )
    if isinstance(store, NearCachedStore):
        store.start()
    cache = ResponseCache(store, schema_version=schema_version(schema), swr=settings.cache_swr)
    try:
        yield cache
    finally:
        await cache.drain()
        await store.aclose()


def upstreams(services: Services) -> list[Upstream]:
    """The third-party APIs the services call through an `Upstream` (each behind its own circuit breaker), for
    `/readyz`. Payments today (none with the local provider); a new upstream-backed service is added here."""
    found: list[Upstream] = []
    for service in (services.payments,):
        upstream = getattr(service, "upstream", None)
        if isinstance(upstream, Upstream):
            found.append(upstream)
    return found


@dataclass
class Running:
    services: Services
    worker: OutboxWorker | None


@asynccontextmanager
async def running_services(
    settings: Settings, sessionmaker: async_sessionmaker[AsyncSession], *, start_worker: bool
) -> AsyncIterator[Running]:
    """Open the services (and the outbox worker when asked); close them all on exit, in reverse order.

    On exit the worker is told to stop: it finishes the message it is sending, records the outcome and releases the
    rest of its batch for other workers. It gets `GATEWAY_GRACEFUL_TIMEOUT` seconds for that (uvicorn has drained
    the HTTP requests by then); after that it is cancelled, and it still releases the emails it had not started.
    """
    payments = payment_provider(settings, sessionmaker)
    cache = cache_from_url(settings.redis_url, prefix=settings.cache_prefix)
    services = Services(
        sessionmaker=sessionmaker,
        payments=payments,
        cache=cache,
        payment_cache_ttl=settings.payment_cache_ttl,
        payment_lease=payment_lease(settings),
        email_domain=email_domain(settings.email_from),
        shop_name=settings.shop_name,
    )
    worker = outbox_worker(settings, sessionmaker) if start_worker else None
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop, settings.email_poll_interval)) if worker is not None else None
    try:
        yield Running(services=services, worker=worker)
    finally:
        stop.set()
        if task is not None:
            try:
                await asyncio.wait_for(asyncio.shield(task), timeout=settings.graceful_timeout)
            except TimeoutError:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if worker is not None:
            await worker.backend.aclose()
        await payments.aclose()
        await cache.aclose()
