"""OpenTelemetry tracing through the real app served by uvicorn, exporting to a real OTLP/HTTP receiver on
127.0.0.1: one trace per request from the server span down to SQL and upstream calls, a client's traceparent
continued and sent on upstream, no secrets in spans, and nothing at all installed when OTEL_* leaves it off."""

from __future__ import annotations

import os
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import orjson
import pytest
from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware
from sqlalchemy.ext.asyncio import AsyncEngine

import integrations.http
import resolvers.loaders
from gateway.app import create_app
from gateway.extensions.operation_span import OperationSpan
from gateway.observability.tracing import Tracing
from tests.conftest import GraphQLClient, app_settings_for, empty_tables, token_for
from tests.schema.test_orders_stripe import order_input, seed_shop
from tests.support.http_server import Reply, ScriptedServer
from tests.support.live_server import live_server
from tests.support.otlp_collector import CLIENT, SERVER, CollectedSpan, OTLPCollector

PLACE = """mutation Place($input: PlaceOrderInput!) {
  placeOrder(input: $input) { order { id status } userErrors { code } } }"""
ORDERS = """query Orders {
  orders(first: 5) { edges { node { number customer { name } lines { quantity product { name } } } } }
}"""
PRODUCT = "query Product($id: ID!) { product(id: $id) { id name } }"
STRIPE_KEY = "sk_test_tracing_0123456789abcdef"
INTENT = {
    "id": "pi_traced",
    "object": "payment_intent",
    "amount": 1999,
    "currency": "usd",
    "status": "succeeded",
    "created": 1_700_000_000,
    "latest_charge": None,
    "last_payment_error": None,
}
TRACEPARENT = re.compile(r"00-([0-9a-f]{32})-([0-9a-f]{16})-[0-9a-f]{2}")


@pytest.fixture(autouse=True)
def _no_ambient_otel(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only what a test sets configures tracing."""
    for name in [name for name in os.environ if name.startswith("OTEL_")]:
        monkeypatch.delenv(name)


@pytest.fixture
async def collector() -> AsyncIterator[OTLPCollector]:
    async with OTLPCollector() as collector:
        yield collector


@pytest.fixture
def traced(collector: OTLPCollector, monkeypatch: pytest.MonkeyPatch) -> OTLPCollector:
    """Tracing on, exporting to `collector` (with a header, as OTEL_EXPORTER_OTLP_HEADERS says)."""
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", collector.url)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", "x-collector-token=t0ken")
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "20")
    return collector


@pytest.fixture
async def store(sqlite_url: str) -> str:
    await empty_tables(sqlite_url)
    return sqlite_url


@asynccontextmanager
async def gateway(store: str, tmp_path: Path, **overrides: object) -> AsyncIterator[GraphQLClient]:
    """The app from this environment, served by uvicorn; leaving it runs the lifespan's shutdown, which exports
    every span still buffered."""
    settings = app_settings_for(store, tmp_path, **overrides)
    app = create_app(settings)
    async with (
        live_server(app) as url,
        httpx.AsyncClient(
            base_url=url, headers={"Authorization": f"Bearer {token_for(settings)}"}, trust_env=False
        ) as http,
    ):
        yield GraphQLClient(app, http)


def by_id(spans: list[CollectedSpan]) -> dict[str, CollectedSpan]:
    return {span.span_id: span for span in spans}


def named(spans: list[CollectedSpan], name: str) -> CollectedSpan:
    found = [span for span in spans if span.name == name]
    assert len(found) == 1, [span.name for span in spans]
    return found[0]


def statement(span: CollectedSpan) -> str | None:
    value = span.attributes.get("db.statement", span.attributes.get("db.query.text"))
    return None if value is None else str(value)


def otel_listeners(engine: AsyncEngine) -> list[str]:
    """The engine's SQLAlchemy event listeners that come from OpenTelemetry."""
    found = []
    for event in ("before_cursor_execute", "after_cursor_execute"):
        for listener in getattr(engine.sync_engine.dispatch, event):
            if (getattr(listener, "__module__", None) or "").startswith("opentelemetry"):
                found.append(f"{event}: {listener!r}")
    return found


def installed(client: GraphQLClient) -> dict[str, bool]:
    """Where tracing would hook into the running app."""
    app = client.app
    return {
        "tracing": app.state.tracing is not None,
        "middleware": any(getattr(m, "cls", None) is OpenTelemetryMiddleware for m in app.user_middleware),
        "sql listeners": bool(otel_listeners(app.state.engine)),
        "operation extension": any(isinstance(e, OperationSpan) for e in app.state.schema.get_extensions()),
        "loader scopes": bool(resolvers.loaders._scopes),
        "upstream client hooks": bool(integrations.http._client_hooks),
    }


async def test_a_query_is_one_trace_from_the_request_down_to_loader_batches_and_sql(
    traced: OTLPCollector, store: str, tmp_path: Path
) -> None:
    async with gateway(store, tmp_path) as client:
        assert all(installed(client).values()), installed(client)
        customer, product = await seed_shop(client)
        for key in ("a", "b"):
            placed = await client.execute(PLACE, order_input(customer, product, key))
            assert placed["placeOrder"]["order"]["status"] == "PAID"
        data = await client.execute(ORDERS)
        assert len(data["orders"]["edges"]) == 2
        for probe in ("/healthz", "/readyz", "/metrics"):
            assert (await client.http.get(probe)).status_code == 200

    operation = named(traced.spans, "query Orders")
    trace = traced.trace(operation.trace_id)
    spans = by_id(trace)
    (root,) = [span for span in trace if not span.parent_span_id]
    assert (root.name, root.kind) == ("POST /graphql", SERVER)
    assert operation.parent_span_id == root.span_id
    assert operation.attributes["graphql.operation.name"] == "Orders"
    assert operation.attributes["graphql.operation.type"] == "query"
    assert "graphql.document" not in operation.attributes
    for phase in ("graphql.parse", "graphql.validate", "graphql.execute"):
        assert named(trace, phase).parent_span_id == operation.span_id
    execute = named(trace, "graphql.execute")

    loaders = [span for span in trace if span.name.startswith("loader ")]
    assert {
        span.attributes["gateway.loader.name"]: span.attributes["gateway.loader.batch_size"] for span in loaders
    } == {
        "OrderLinesByOrderIdLoader": 2,  # two orders
        "CustomerByIdLoader": 1,  # both by the same customer
        "ProductByIdLoader": 1,  # of the same product
    }
    assert {span.parent_span_id for span in loaders} == {execute.span_id}

    sql = [span for span in trace if statement(span) is not None]
    assert all(span.kind == CLIENT for span in sql)
    assert all(str(statement(span)).lstrip().upper().startswith("SELECT") for span in sql)
    for loader in loaders:  # each batch is one statement, inside the batch's span
        assert [span.parent_span_id for span in sql].count(loader.span_id) == 1, loader.name
    assert {spans[span.parent_span_id].name for span in sql} <= {"graphql.execute", *(s.name for s in loaders)}
    page = [span for span in sql if span.parent_span_id == execute.span_id]
    assert 1 <= len(page) <= 2  # the page of orders (and its count), by the connection resolver
    assert len(sql) == len(loaders) + len(page)
    for span in sql:  # the loaders' reads run on the driver directly (`DirectReadSpans`), the page through SQLAlchemy
        assert (span.name, sorted(span.attributes)) == (page[0].name, sorted(page[0].attributes)), span
    assert not [span.name for span in trace if "Resolving" in span.name]  # no span per field
    assert len(trace) == 1 + 1 + 3 + len(loaders) + len(sql)

    assert operation.resource["service.name"] == "gateway"
    assert all(export["x-collector-token"] == "t0ken" for export in traced.exports)
    assert not [span.name for span in traced.spans if span.name.startswith("GET /")]  # probes are not traced


async def test_a_client_traceparent_is_continued(traced: OTLPCollector, store: str, tmp_path: Path) -> None:
    trace_id, parent_id = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
    async with gateway(store, tmp_path) as client:
        response = await client.post(
            "query Typename { __typename }", headers={"traceparent": f"00-{trace_id}-{parent_id}-01"}
        )
        assert response.status_code == 200

    operation = named(traced.spans, "query Typename")
    assert operation.trace_id == trace_id
    root = by_id(traced.trace(trace_id))[operation.parent_span_id]
    assert (root.kind, root.parent_span_id) == (SERVER, parent_id)


async def test_an_upstream_call_gets_a_client_span_and_the_upstream_gets_the_trace(
    traced: OTLPCollector, store: str, tmp_path: Path
) -> None:
    async with ScriptedServer() as stripe:
        stripe.default = Reply(200, body=orjson.dumps(INTENT))
        overrides: dict[str, object] = {
            "PAYMENTS_PROVIDER": "stripe",
            "STRIPE_API_KEY": STRIPE_KEY,
            "STRIPE_API_BASE": stripe.url,
            "PAYMENTS_RETRIES": 0,
        }
        async with gateway(store, tmp_path, **overrides) as client:
            customer, product = await seed_shop(client)
            placed = await client.execute(PLACE, order_input(customer, product, "upstream-1"))
            assert placed["placeOrder"]["order"]["status"] == "PAID"
        received = list(stripe.received)

    operation = named(traced.spans, "mutation Place")
    trace = traced.trace(operation.trace_id)
    spans = by_id(trace)
    calls = [span for span in trace if span.kind == CLIENT and statement(span) is None]
    assert [(request.method, request.path) for request in received] == [
        ("POST", "/v1/payment_intents"),
        ("POST", "/v1/payment_intents/pi_traced/confirm"),
    ]
    assert len(calls) == len(received) == 2
    for call in calls:  # under the operation's execution
        assert spans[call.parent_span_id].name == "graphql.execute"
        assert spans[spans[call.parent_span_id].parent_span_id] == operation
    sent = [TRACEPARENT.fullmatch(request.headers["traceparent"]) for request in received]
    assert all(match is not None for match in sent), [request.headers.get("traceparent") for request in received]
    assert {match.group(1) for match in sent if match} == {operation.trace_id}
    assert {match.group(2) for match in sent if match} == {call.span_id for call in calls}  # each attempt's span
    assert STRIPE_KEY not in repr([span.attributes for span in traced.spans])


async def test_secrets_stay_out_of_spans(traced: OTLPCollector, store: str, tmp_path: Path) -> None:
    email = "ada.secret@example.com"
    password = "hunter2-correct-horse-battery"
    async with gateway(store, tmp_path) as client:
        bearer = client.http.headers["Authorization"].removeprefix("Bearer ")
        await client.execute(
            'mutation New($email: String!) { createCustomer(input: {name: "Ada", email: $email}) { customer { id } } }',
            {"email": email},
        )
        _, product = await seed_shop(client)
        response = await client.http.get(
            "/graphql",
            params={"query": PRODUCT, "variables": orjson.dumps({"id": product, "password": password}).decode()},
            headers={"GraphQL-Require-Preflight": "1"},
        )
        assert response.status_code == 200, response.text
        refused = await client.post("{ __typename }", headers={"X-API-Key": "gw_live_" + "k" * 40, "Authorization": ""})
        assert refused.status_code == 401

    insert = [span for span in traced.spans if (statement(span) or "").upper().startswith("INSERT INTO CUSTOMER")]
    assert insert, sorted({str(statement(span)) for span in traced.spans})
    exported = repr([(span.name, span.attributes, span.status_message) for span in traced.spans])
    for secret in (email, password, bearer, "gw_live_", "hunter2"):
        assert secret not in exported
    get = named([span for span in traced.spans if span.kind == SERVER], "GET /graphql")
    assert not [value for value in get.attributes.values() if isinstance(value, str) and "query=" in value]


@pytest.mark.parametrize(
    "environment",
    [
        pytest.param({}, id="no OTEL variables"),
        pytest.param({"OTEL_SERVICE_NAME": "gateway", "OTEL_BSP_SCHEDULE_DELAY": "20"}, id="no endpoint"),
        pytest.param({"OTEL_EXPORTER_OTLP_ENDPOINT": "{collector}", "OTEL_SDK_DISABLED": "true"}, id="disabled"),
        pytest.param(
            {"OTEL_EXPORTER_OTLP_ENDPOINT": "{collector}", "OTEL_TRACES_EXPORTER": "none"}, id="exporter none"
        ),
    ],
)
async def test_without_an_exporter_nothing_is_installed_or_exported(
    environment: dict[str, str],
    collector: OTLPCollector,
    store: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name, value in environment.items():
        monkeypatch.setenv(name, value.format(collector=collector.url))
    async with gateway(store, tmp_path) as client:
        assert not any(installed(client).values()), installed(client)
        _, product = await seed_shop(client)
        await client.execute(PRODUCT, {"id": product})

    assert collector.exports == []
    assert collector.spans == []


@pytest.mark.parametrize(
    ("environment", "service"),
    [
        ({}, "gateway"),
        ({"OTEL_SERVICE_NAME": "shop-gateway"}, "shop-gateway"),
        ({"OTEL_RESOURCE_ATTRIBUTES": "service.name=edge,deployment.environment=staging"}, "edge"),
    ],
)
def test_the_service_is_named_gateway_unless_the_environment_says_otherwise(
    environment: dict[str, str], service: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9")  # never reached: nothing is exported
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    tracing = Tracing.from_environment()
    assert tracing is not None
    try:
        assert tracing.provider.resource.attributes["service.name"] == service
    finally:
        tracing.provider.shutdown()


def test_the_console_exporter_needs_no_endpoint(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "console")
    tracing = Tracing.from_environment()
    assert tracing is not None
    with tracing.tracer.start_as_current_span("printed"):
        pass
    tracing.provider.shutdown()
    assert '"name": "printed"' in capsys.readouterr().out
