"""Prometheus metrics (`gateway_*`) and the `/metrics` endpoint.

Single process: the default registry. With `PROMETHEUS_MULTIPROC_DIR` set (by `gateway serve --workers N`, or
yourself) every worker writes its values to files there and a scrape of any worker aggregates them all
(`MultiProcessCollector`). prometheus-client picks the mode when it is first imported, so the variable must be
set before the workers start.

Hot path: a request costs a few increments on pre-bound children and one histogram observation. Counters the
response cache, near cache and rate limiter already keep (`stats`) are carried over as deltas at the end of each
request and at scrape time, not counted twice. Scrape-time values (outbox backlog, breaker states) are computed
by the scraping worker; the outbox query runs at most every `OUTBOX_TTL` seconds, bounded by a timeout.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
import weakref
from collections.abc import Awaitable, Callable
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from starlette.requests import Request
from starlette.responses import Response

from gateway.observability.record import ANONYMOUS_OPERATION, Record, current
from integrations.http import Upstream, observe_calls
from integrations.store.statements import observe_statements
from resolvers.email.delivery import outbox_backlog
from resolvers.loaders import observe_batches

logger = logging.getLogger("gateway.metrics")

MAX_OPERATION_LABELS = 200
"""Distinct operation names a process labels; later ones are counted as "other"."""
OTHER_OPERATION = "other"
OUTBOX_TTL = 5.0
OUTBOX_TIMEOUT = 1.0
BREAKER_STATES = {"closed": 0.0, "half_open": 1.0, "open": 2.0}

REQUESTS = Counter("gateway_requests", "GraphQL requests by operation name and outcome", ["operation", "outcome"])
REQUEST_SECONDS = Histogram(
    "gateway_request_duration_seconds",
    "GraphQL request duration",
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
CACHE_LOOKUPS = Counter("gateway_response_cache_requests", "Answers by response cache status (X-Cache)", ["status"])
CACHE_INVALIDATIONS = Counter("gateway_response_cache_invalidations", "Successful response cache invalidations")
NEAR_CACHE_HITS = Counter("gateway_near_cache_hits", "Response cache reads answered by the instance's near cache")
PERSISTED_HITS = Counter("gateway_persisted_query_hits", "Documents found by id", ["kind"])
RATE_LIMIT_REFUSALS = Counter("gateway_rate_limit_refusals", "Requests (or batch operations) refused with 429")
SQL_STATEMENTS = Counter("gateway_sql_statements", "SQL statements sent to the store")
SQL_ERRORS = Counter(
    "gateway_sql_statement_errors", "SQL statements that failed (a direct read that fails is then run again)"
)
SQL_SECONDS = Histogram(
    "gateway_sql_statement_duration_seconds",
    "SQL statement duration",
    buckets=(0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0),
)
LOADER_BATCH = Histogram(
    "gateway_loader_batch_size",
    "Keys per loader batch",
    ["loader"],
    buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500, 1000),
)
UPSTREAM_CALLS = Counter("gateway_upstream_calls", "Calls to third-party APIs", ["provider", "outcome"])
UPSTREAM_SECONDS = Histogram("gateway_upstream_call_duration_seconds", "Third-party call duration", ["provider"])
BREAKER_STATE = Gauge(
    "gateway_circuit_breaker_state",
    "Circuit breaker state: 0 closed, 1 half-open, 2 open (the worst of the live workers)",
    ["provider"],
    multiprocess_mode="livemax",
)
OUTBOX_PENDING = Gauge(
    "gateway_email_outbox_pending", "Emails waiting in the outbox", multiprocess_mode="livemostrecent"
)
OUTBOX_OLDEST_AGE = Gauge(
    "gateway_email_outbox_oldest_pending_age_seconds",
    "Age of the oldest pending email (0 when none)",
    multiprocess_mode="livemostrecent",
)

TRUSTED_HITS = PERSISTED_HITS.labels("trusted")
APQ_HITS = PERSISTED_HITS.labels("apq")
_CACHE_STATUS = {status: CACHE_LOOKUPS.labels(status) for status in ("HIT", "MISS", "STALE", "BYPASS")}
_requests: dict[tuple[str, str], Any] = {}
_loader_batches: dict[str, Any] = {}
_operations: set[str] = set()
_upstreams: weakref.WeakSet[Upstream] = weakref.WeakSet()


def multiprocess_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


def operation_label(name: str | None) -> str:
    """The operation's name as a label, from a document the document cache holds: at most
    `MAX_OPERATION_LABELS` names per process, "-" for an unnamed operation, "other" past the cap."""
    if not name:
        return ANONYMOUS_OPERATION
    if name in _operations:
        return name
    if len(_operations) >= MAX_OPERATION_LABELS:
        return OTHER_OPERATION
    _operations.add(name)
    return name


def outcome(status: int, record: Record) -> str:
    if status >= 500:
        return "server_error"
    if status >= 400:
        return "client_error"
    return "graphql_error" if record.error_codes else "ok"


def observe_request(record: Record, status: int, cache_status: str | None, seconds: float) -> None:
    key = (record.operation, outcome(status, record))
    child = _requests.get(key)
    if child is None:
        child = _requests[key] = REQUESTS.labels(*key)
    child.inc()
    REQUEST_SECONDS.observe(seconds)
    if cache_status is not None:
        cached = _CACHE_STATUS.get(cache_status)
        if cached is not None:
            cached.inc()


class Deltas:
    """Carries counts other objects keep (`stats`, `hits`) into Prometheus counters as they grow."""

    def __init__(self) -> None:
        self.sources: list[tuple[Callable[[], int], Counter]] = []
        self._seen: list[int] = []
        self._synced = 0.0

    def add(self, read: Callable[[], int], counter: Counter) -> None:
        self.sources.append((read, counter))
        self._seen.append(read())

    def clear(self) -> None:
        self.sources.clear()
        self._seen.clear()

    def sync(self, *, every: float = 0.0) -> None:
        """Carry what grew since the last sync; with `every`, only if that was at least `every` seconds ago (so
        requests pay for it a few times a second at most)."""
        now = time.monotonic()
        if every and now - self._synced < every:
            return
        self._synced = now
        for index, (read, counter) in enumerate(self.sources):
            value = read()
            if value > self._seen[index]:
                counter.inc(value - self._seen[index])
            self._seen[index] = value


def instrument_engine(engine: AsyncEngine) -> None:
    """Count and time every statement the engine sends, direct reads included, and the ones that failed; the
    request's record counts its own."""

    def statement(_sql: str, seconds: float, error: BaseException | None) -> None:
        SQL_STATEMENTS.inc()
        SQL_SECONDS.observe(seconds)
        if error is not None:
            SQL_ERRORS.inc()
        record = current.get()
        if record is not None:
            record.sql_statements += 1

    observe_statements(engine, statement)


def _upstream_call(upstream: Upstream, call_outcome: str, seconds: float) -> None:
    _upstreams.add(upstream)
    UPSTREAM_CALLS.labels(upstream.name, call_outcome).inc()
    UPSTREAM_SECONDS.labels(upstream.name).observe(seconds)
    _set_breaker_state(upstream)
    record = current.get()
    if record is not None:
        record.upstream_calls += 1


def _set_breaker_state(upstream: Upstream) -> None:
    BREAKER_STATE.labels(upstream.name).set(BREAKER_STATES[upstream.breaker.state])


def _loader_batch(loader: str, size: int) -> None:
    child = _loader_batches.get(loader)
    if child is None:  # `labels()` checks and locks on every call: a child per loader class, looked up once
        child = _loader_batches[loader] = LOADER_BATCH.labels(loader)
    child.observe(size)


def install_hooks() -> Callable[[], None]:
    """Listen to upstream calls and loader batches (process-wide); returns the function that stops it."""
    stop_calls = observe_calls(_upstream_call)
    stop_batches = observe_batches(_loader_batch)

    def uninstall() -> None:
        stop_calls()
        stop_batches()

    return uninstall


class OutboxBacklog:
    """The outbox gauges, refreshed at scrape time at most every `ttl` seconds; a store that is down or slow
    leaves the previous values (the scrape itself never fails for it)."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], *, ttl: float = OUTBOX_TTL) -> None:
        self.sessionmaker = sessionmaker
        self.ttl = ttl
        self._checked = -float("inf")

    async def refresh(self) -> None:
        now = time.monotonic()
        if now - self._checked < self.ttl:
            return
        self._checked = now
        try:
            async with asyncio.timeout(OUTBOX_TIMEOUT):
                pending, oldest_age = await outbox_backlog(self.sessionmaker)
        except Exception as exc:  # the store is down or slow: keep what we had
            logger.warning("metrics: outbox backlog unavailable (%s)", type(exc).__name__)
            return
        OUTBOX_PENDING.set(pending)
        OUTBOX_OLDEST_AGE.set(oldest_age or 0.0)


def metrics_endpoint(outbox: OutboxBacklog, deltas: Deltas) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(_request: Request) -> Response:
        await outbox.refresh()
        deltas.sync()
        for upstream in list(_upstreams):
            _set_breaker_state(upstream)
        directory = multiprocess_dir()
        if directory is not None:
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry, path=directory)  # type: ignore[no-untyped-call]
            body = generate_latest(registry)
        else:
            body = generate_latest(REGISTRY)
        return Response(body, media_type=CONTENT_TYPE_LATEST, headers={"Cache-Control": "no-store"})

    return endpoint
