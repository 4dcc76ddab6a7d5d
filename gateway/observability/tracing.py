"""OpenTelemetry tracing: off unless the standard ``OTEL_*`` variables configure an exporter.

On when ``OTEL_EXPORTER_OTLP_ENDPOINT`` or ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` is set (OTLP over HTTP/protobuf),
or ``OTEL_TRACES_EXPORTER`` lists ``console``; ``OTEL_SDK_DISABLED=true`` or ``OTEL_TRACES_EXPORTER=none`` keeps it
off. Off, `Tracing.from_environment` returns None and nothing is installed anywhere: no middleware, no SQL event
listeners, no schema extension, no hooks (a response-cache hit costs what it did).

Everything else is read by the SDK itself, so it means what it means for any OpenTelemetry service:
``OTEL_SERVICE_NAME`` (default ``gateway``), ``OTEL_RESOURCE_ATTRIBUTES``, ``OTEL_EXPORTER_OTLP_HEADERS``,
``OTEL_EXPORTER_OTLP_TIMEOUT``, ``OTEL_TRACES_SAMPLER`` (and ``_ARG``), ``OTEL_BSP_*``, ``OTEL_PROPAGATORS`` (W3C
``traceparent`` by default). One trace of a request::

    POST /graphql                   server span (ASGI instrumentation; continues a client's traceparent)
      query Orders                  the operation (gateway/extensions/operation_span.py)
        graphql.parse, graphql.validate
        graphql.execute
          loader OrderByIdLoader    one per loader batch, with gateway.loader.batch_size
            SELECT …                SQL (SQLAlchemy instrumentation: the statement text, never its parameters;
                                    `DirectReadSpans` for the reads SQLAlchemy does not run)
          loader ProviderPaymentByReferenceLoader
            GET                     upstream attempt (httpx instrumentation; the upstream gets traceparent)

The provider is the app's own, not the process's global one (several apps may live in one process, as in tests).
It is flushed and shut down when the app's lifespan ends.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from importlib.metadata import PackageNotFoundError, version
from types import SimpleNamespace
from typing import Any

import httpx
from opentelemetry.environment_variables import OTEL_TRACES_EXPORTER
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware
from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
from opentelemetry.instrumentation.sqlalchemy.engine import (
    EngineTracer,
    _get_attributes_from_cursor_or_conn,
    _get_attributes_from_url,
    _get_db_name_from_cursor_or_conn,
)
from opentelemetry.instrumentation.utils import is_instrumentation_enabled
from opentelemetry.metrics import NoOpMeterProvider
from opentelemetry.sdk.environment_variables import (
    OTEL_EXPORTER_OTLP_ENDPOINT,
    OTEL_EXPORTER_OTLP_TRACES_ENDPOINT,
    OTEL_SDK_DISABLED,
)
from opentelemetry.sdk.resources import SERVICE_NAME, SERVICE_VERSION, OTELResourceDetector, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, Tracer
from opentelemetry.util.http import OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SANITIZE_FIELDS, get_custom_headers
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette
from strawberry.extensions import SchemaExtension

from gateway.extensions.operation_span import OperationSpan
from integrations.http import instrument_clients
from integrations.store.direct import observe_direct_reads
from resolvers.loaders import scope_batches

DEFAULT_SERVICE_NAME = "gateway"
UNTRACED_PATHS = r"/healthz$,/readyz$,/metrics$"
"""Probes and scrapes (regular expressions, as ``OTEL_PYTHON_EXCLUDED_URLS`` takes them, which replaces these)."""
SENSITIVE_HEADERS = ("authorization", "proxy-authorization", "x-api-key", "cookie", "set-cookie")
"""Redacted even if ``OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SERVER_REQUEST`` asks to record them."""
REDACTED = "[redacted]"


class Tracing:
    """The app's tracer provider and what it instruments."""

    def __init__(self, provider: TracerProvider) -> None:
        self.provider = provider
        self.tracer: Tracer = provider.get_tracer("gateway")
        self._stop: list[Callable[[], None]] = []

    @classmethod
    def from_environment(cls) -> Tracing | None:
        """Tracing as the ``OTEL_*`` variables configure it, or None when they configure no exporter."""
        if os.environ.get(OTEL_SDK_DISABLED, "").strip().lower() == "true":
            return None
        names = {name.strip().lower() for name in os.environ.get(OTEL_TRACES_EXPORTER, "otlp").split(",")}
        exporters: list[SpanExporter] = []
        endpoint = os.environ.get(OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) or os.environ.get(OTEL_EXPORTER_OTLP_ENDPOINT)
        if "otlp" in names and endpoint:
            exporters.append(OTLPSpanExporter())  # endpoint, headers, timeout, compression: from OTEL_EXPORTER_OTLP_*
        if "console" in names:
            exporters.append(ConsoleSpanExporter(out=sys.stdout))  # the stdout of now, not of import time
        if not exporters:
            return None
        provider = TracerProvider(resource=_resource(), shutdown_on_exit=False)  # sampler: OTEL_TRACES_SAMPLER
        for exporter in exporters:
            provider.add_span_processor(BatchSpanProcessor(exporter))  # OTEL_BSP_*
        return cls(provider)

    def schema_extensions(self) -> list[Callable[[], SchemaExtension]]:
        """The operation span, to come first in the schema's extensions (it encloses the others' work)."""
        return [lambda: OperationSpan(self.tracer)]

    def instrument(self, app: Starlette, engine: AsyncEngine) -> None:
        """The request span (outermost middleware) and SQL spans for `engine`; before the app serves."""
        app.add_middleware(
            OpenTelemetryMiddleware,
            excluded_urls=os.environ.get("OTEL_PYTHON_ASGI_EXCLUDED_URLS")
            or os.environ.get("OTEL_PYTHON_EXCLUDED_URLS")
            or UNTRACED_PATHS,
            tracer_provider=self.provider,
            meter_provider=NoOpMeterProvider(),  # metrics are Prometheus's (`metrics.py`)
            exclude_spans=["receive", "send"],  # one span per request, not one per ASGI message
            server_request_hook=_without_query,
            http_capture_headers_sanitize_fields=[
                *get_custom_headers(OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SANITIZE_FIELDS),
                *SENSITIVE_HEADERS,
            ],
        )
        # The instrumentation's per-engine tracer: `SQLAlchemyInstrumentor().instrument(engine=…)` would also patch
        # `create_engine` and `Engine.connect` process-wide (a "connect" span per checkout) and works once a process.
        usage = NoOpMeterProvider().get_meter("gateway").create_up_down_counter("db.client.connections.usage")
        sql = EngineTracer(self.tracer, engine.sync_engine, usage, enable_commenter=False)  # type: ignore[no-untyped-call]
        observe_direct_reads(engine, DirectReadSpans(sql, engine))

    def start(self) -> None:
        """At lifespan start: spans for loader batches and upstream calls (process-wide hooks, until `stop`)."""
        self._stop = [scope_batches(self._batch_span), instrument_clients(self._instrument_client)]

    async def stop(self) -> None:
        """At lifespan end: remove the hooks, then export what is left and shut the provider down."""
        for stop in self._stop:
            stop()
        self._stop = []
        await asyncio.to_thread(self.provider.shutdown)  # blocks for the last export (at most its timeout)

    @contextmanager
    def _batch_span(self, loader: str, size: int) -> Iterator[None]:
        attributes: dict[str, str | int] = {"gateway.loader.name": loader, "gateway.loader.batch_size": size}
        with self.tracer.start_as_current_span(f"loader {loader}", attributes=attributes):
            yield

    def _instrument_client(self, client: httpx.AsyncClient) -> None:
        HTTPXClientInstrumentor.instrument_client(client, tracer_provider=self.provider)


class DirectReadSpans:
    """Spans for the store's direct reads (`integrations/store/direct.py`), which SQLAlchemy's events, and so its
    instrumentation, never see: named and described by that instrumentation's own code, so they look like the
    spans of the statements it sees. Made after the read, with its start and end times."""

    def __init__(self, sql: EngineTracer, engine: AsyncEngine) -> None:
        self._sql = sql
        source = SimpleNamespace(engine=engine.sync_engine)  # what the instrumentation reads off a connection
        self._database = _get_db_name_from_cursor_or_conn(sql.vendor, source, None)  # type: ignore[no-untyped-call]
        modes = (sql._sem_conv_opt_in_mode_db, sql._sem_conv_opt_in_mode_http)
        attributes, found = _get_attributes_from_url(engine.url, *modes)  # type: ignore[no-untyped-call]
        if not found:
            attributes = _get_attributes_from_cursor_or_conn(sql.vendor, source, None, attributes, *modes)  # type: ignore[no-untyped-call]
        self._attributes = attributes

    def __call__(self, statement: str, seconds: float, error: BaseException | None) -> None:
        if not is_instrumentation_enabled():
            return
        end = time.time_ns()
        name = self._sql._operation_name(self._database, statement)  # type: ignore[no-untyped-call]
        span = self._sql.tracer.start_span(name, kind=SpanKind.CLIENT, start_time=end - round(seconds * 1e9))
        if span.is_recording():
            self._sql._set_db_client_span_attributes(span, statement, self._database, self._attributes)
            if error is not None:  # its type only: a driver's message may quote the parameters
                span.set_status(Status(StatusCode.ERROR, type(error).__name__))
        span.end(end_time=end)


def _resource() -> Resource:
    """``OTEL_RESOURCE_ATTRIBUTES`` and ``OTEL_SERVICE_NAME`` (read by the SDK), with the gateway's defaults."""
    configured = OTELResourceDetector().detect().attributes
    defaults: dict[str, str] = {}
    if SERVICE_NAME not in configured:
        defaults[SERVICE_NAME] = DEFAULT_SERVICE_NAME
    if SERVICE_VERSION not in configured:
        with suppress(PackageNotFoundError):
            defaults[SERVICE_VERSION] = version("graphql-gateway")
    return Resource.create(defaults)


def _without_query(span: Span, scope: dict[str, Any]) -> None:
    """A GET to /graphql carries its query and variables in the query string: keep them out of the request span."""
    if not scope.get("query_string") or not span.is_recording():
        return
    attributes = getattr(span, "attributes", None) or {}
    for key in ("http.url", "url.full", "http.target"):
        value = attributes.get(key)
        if isinstance(value, str) and "?" in value:
            span.set_attribute(key, value.split("?", 1)[0])
    if "url.query" in attributes:
        span.set_attribute("url.query", REDACTED)
