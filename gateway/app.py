"""The Starlette application factory and its lifespan (engine opened and disposed with the app)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from redis.asyncio import Redis
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import BaseRoute, Mount, Route
from starlette.types import ASGIApp

from gateway.auth.setup import authenticator, drain_authenticator
from gateway.cache_policy import CacheHints
from gateway.documents import Documents, PreparedDocuments
from gateway.endpoint import GraphQLEndpoint
from gateway.graphiql import STATIC_PREFIX, graphiql_static_app
from gateway.health import Check, database_check, healthz, readyz, redis_check
from gateway.limits import Limits
from gateway.middleware.cors import cors_middleware
from gateway.middleware.csrf import CSRFPrevention
from gateway.middleware.direct_route import DirectRoute
from gateway.observability import metrics
from gateway.observability.logging import configure_logging, configure_structlog
from gateway.observability.middleware import Observe
from gateway.observability.tracing import Tracing
from gateway.persisted_queries import PersistedQueries
from gateway.rate_limit import RateLimit, rate_limit
from gateway.response_cache import ResponseCache
from gateway.runtime import tune_garbage_collector
from gateway.safelist import Safelist
from gateway.services import response_cache, running_services
from gateway.settings import Settings, load_settings
from gateway.webhooks import StripeWebhookEndpoint
from integrations.cache.tagged.near import NearCachedStore
from integrations.store.changes import ChangeFeed
from integrations.store.engine import create_engine, create_sessionmaker
from resolvers.trusted_documents import TrustedDocuments
from schema import build_schema
from schema.audit.extension import AuditLog

logger = logging.getLogger("gateway")

GRAPHQL_PATH = "/graphql"


def create_app(settings: Settings) -> Starlette:
    configure_structlog()
    engine = create_engine(settings.database_url, pool_size=settings.db_pool_size)
    deltas = metrics.Deltas() if settings.metrics else None
    if settings.metrics:
        metrics.instrument_engine(engine)
    tracing = Tracing.from_environment()  # None unless OTEL_* variables configure an exporter
    # Valid queries skip these (`schema.execution`, `GraphQLEndpoint.direct_queries`): the endpoint has done
    # PreparedDocuments' work for them and AuditLog records only mutations. The operation span must see every
    # operation, so with tracing on everything goes through them. An extension added here must be one of those
    # (tests/gateway/test_direct_queries.py lists them). Incremental delivery (@defer) would need Strawberry's.
    schema = build_schema(
        extensions=[
            *(tracing.schema_extensions() if tracing is not None else ()),
            lambda: PreparedDocuments(documents),
            AuditLog,
        ]
    )
    documents = Documents(
        schema._schema, max_entries=settings.document_cache_size, limits=Limits.from_settings(settings)
    )
    changes = ChangeFeed()
    sessionmaker = create_sessionmaker(engine, changes=changes)
    endpoint = GraphQLEndpoint(
        schema,
        sessionmaker,
        documents,
        changes,
        CacheHints(schema._schema, default_max_age=settings.cache_default_max_age),
        Safelist(
            TrustedDocuments(sessionmaker, ttl=settings.trusted_documents_ttl),
            trusted_only=settings.trusted_documents_only,
        ),
        authenticator(settings, sessionmaker),
        max_body_bytes=settings.max_body_bytes,
        graphiql=settings.graphiql_enabled,
        expose_internal_errors=not settings.production,
        max_batch_size=settings.max_batch_size if settings.batching else None,
        cost_extension=settings.cost_extension_enabled,
        direct_queries=tracing is None and not schema.config.enable_experimental_incremental_execution,
    )

    checks: dict[str, Check] = {"database": database_check(engine)}
    redis = None
    if settings.redis_url:
        redis = Redis.from_url(settings.redis_url, socket_timeout=1.0, socket_connect_timeout=1.0)
        checks["redis"] = redis_check(redis)

    webhooks = (
        StripeWebhookEndpoint(settings.stripe_webhook_secret.get_secret_value())
        if settings.stripe_webhook_secret is not None
        else None
    )

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        tune_garbage_collector()
        uninstall_hooks = metrics.install_hooks() if settings.metrics else None
        if tracing is not None:
            tracing.start()
        try:
            async with running_services(settings, sessionmaker, start_worker=settings.email_worker) as running:
                endpoint.services = running.services
                endpoint.persisted_queries = PersistedQueries(
                    running.services.cache, ttl=settings.apq_ttl, enabled=settings.apq
                )
                if webhooks is not None:
                    webhooks.services = running.services
                app.state.services = running.services
                app.state.outbox_worker = running.worker
                async with response_cache(settings, schema) as responses, rate_limit(settings) as limits:
                    if responses is not None:
                        changes.listen(responses.invalidate)
                    endpoint.response_cache = responses
                    app.state.response_cache = responses
                    endpoint.rate_limit = limits
                    app.state.rate_limit = limits
                    if deltas is not None:
                        _count_elsewhere(deltas, responses, limits)
                    try:
                        yield
                    finally:
                        if deltas is not None:
                            deltas.sync()
                            deltas.clear()
                        await drain_authenticator(endpoint.authenticator)  # its writes announce changes too
                        await changes.drain()
        finally:
            if uninstall_hooks is not None:
                uninstall_hooks()
            if redis is not None:
                await redis.aclose()
            await engine.dispose()
            if tracing is not None:
                await tracing.stop()  # after everything else, so their spans are exported too

    graphql: ASGIApp = CSRFPrevention(endpoint) if settings.csrf_prevention else endpoint
    routes: list[BaseRoute] = [
        # DirectRoute (below) takes requests for /graphql itself; the route stays for the router's /graphql/ redirect.
        Route(GRAPHQL_PATH, graphql, methods=["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz(checks), methods=["GET"]),
    ]
    if deltas is not None:
        outbox = metrics.OutboxBacklog(sessionmaker)
        routes.append(Route("/metrics", metrics.metrics_endpoint(outbox, deltas), methods=["GET"]))
    if webhooks is not None:
        routes.append(Route("/webhooks/stripe", webhooks, methods=["POST", "GET", "PUT", "PATCH", "DELETE"]))
    if settings.graphiql_enabled:
        routes.append(Mount(STATIC_PREFIX, app=graphiql_static_app()))
    # Outermost first: every answer (CORS preflights included) gets nosniff; CORS headers reach refusals too.
    middleware = [
        Middleware(Observe, deltas=deltas),  # also the security headers (nosniff)
        *cors_middleware(settings.cors_origins),
        Middleware(DirectRoute, path=GRAPHQL_PATH, endpoint=graphql),  # past the router: the cache-hit path
    ]
    app = Starlette(routes=routes, middleware=middleware, lifespan=lifespan)
    app.state.settings = settings
    app.state.schema = schema
    app.state.engine = engine
    app.state.documents = documents
    app.state.endpoint = endpoint
    app.state.changes = changes
    app.state.tracing = tracing
    if tracing is not None:
        tracing.instrument(app, engine)
    return app


def create_app_from_env() -> Starlette:
    """Factory for `uvicorn --factory` (and so for `gateway serve --workers N` and `--reload`); the process's logs
    go through structlog's formatter."""
    settings = load_settings()
    configure_logging(settings.log_level, settings.log_format_resolved, access_log=settings.access_log)
    return create_app(settings)


def _count_elsewhere(deltas: metrics.Deltas, responses: ResponseCache | None, limits: RateLimit | None) -> None:
    """Counters the response cache, its near cache and the rate limiter keep, carried into metrics."""
    if responses is not None:
        stats = responses.stats
        deltas.add(lambda: stats["invalidations"], metrics.CACHE_INVALIDATIONS)
        store = responses.store
        if isinstance(store, NearCachedStore):
            deltas.add(lambda: store.hits, metrics.NEAR_CACHE_HITS)
    if limits is not None:
        refusals = limits.stats
        deltas.add(lambda: refusals["refused"], metrics.RATE_LIMIT_REFUSALS)
