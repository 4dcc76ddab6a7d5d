"""Observability through the real app: request ids, one structured log line per request without secrets,
Prometheus metrics with exact values, and the development cost extension."""

from __future__ import annotations

import io
import json
import logging
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client import REGISTRY

from gateway.observability import metrics
from gateway.observability.logging import formatter
from integrations.http import Upstream, UpstreamConfig
from integrations.store.engine import create_engine, create_sessionmaker
from integrations.store.models import EmailStatus, OutboxEmail
from integrations.store.types import utcnow
from tests.conftest import GraphQLClient, app_settings_for, serve_in_process

PRODUCT = "query Product($id: ID!) { product(id: $id) { id name } }"
NODES = "query Nodes($ids: [ID!]!) { nodes(ids: $ids) { id } }"
CREATE_PRODUCT = """mutation CreateProduct($sku: String!) {
  createProduct(input: {sku: $sku, name: "Lamp", price: {amount: 500, currency: "USD"}, stock: 10}) {
    product { id }
  }
}"""


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def create_product(client: GraphQLClient) -> str:
    data = await client.execute(CREATE_PRODUCT, {"sku": f"SKU-{uuid.uuid4().hex[:8]}"})
    return str(data["createProduct"]["product"]["id"])


@pytest.fixture
def captured_logs() -> Iterator[io.StringIO]:
    """Everything logged (root logger, INFO and up) rendered as production JSON lines."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter("json"))
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        yield stream
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def request_lines(stream: io.StringIO) -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in stream.getvalue().splitlines() if line.startswith("{")]
    return [line for line in lines if line.get("event") == "graphql request"]


async def test_a_sane_request_id_is_echoed_and_others_are_replaced(client: GraphQLClient) -> None:
    sane = await client.post("{ __typename }", headers={"X-Request-ID": "abc-123.DEF_4"})
    insane = await client.post("{ __typename }", headers={"X-Request-ID": "no spaces; or <tags>"})
    too_long = await client.http.get("/healthz", headers={"X-Request-ID": "a" * 129})
    generated = await client.http.get("/healthz")

    assert sane.headers["x-request-id"] == "abc-123.DEF_4"
    for response in (insane, too_long, generated):
        assert len(response.headers["x-request-id"]) == 32
        int(response.headers["x-request-id"], 16)
    assert too_long.headers["x-request-id"] != generated.headers["x-request-id"]


async def test_one_log_line_per_request_with_its_fields_and_no_secrets(
    client: GraphQLClient, captured_logs: io.StringIO
) -> None:
    product = await create_product(client)
    bearer = client.http.headers["Authorization"].removeprefix("Bearer ")
    password = "hunter2-correct-horse-battery"
    api_key = "gw_live_" + "k" * 40
    captured_logs.truncate(0)
    captured_logs.seek(0)

    await client.post(PRODUCT, {"id": product, "password": password}, headers={"X-Request-ID": "req-1"})
    await client.post("{ __typename }", headers={"X-API-Key": api_key, "Authorization": "", "X-Request-ID": "req-2"})
    await client.post(
        'mutation { createCustomer(input: {name: "Ada", email: "ada.secret@example.com"}) { customer { id } } }',
        headers={"X-Request-ID": "req-3"},
    )

    lines = request_lines(captured_logs)
    assert [line["request_id"] for line in lines] == ["req-1", "req-2", "req-3"]
    first = lines[0]
    assert first["method"] == "POST"
    assert first["path"] == "/graphql"
    assert first["status"] == 200
    assert first["operation"] == "Product"
    assert first["client"] == "user"
    assert first["cache"] == "MISS"
    assert first["error_codes"] == []
    assert first["duration_ms"] > 0
    assert first["level"] == "info"
    assert lines[1]["status"] == 401
    assert lines[1]["error_codes"] == ["UNAUTHENTICATED"]
    assert lines[2]["operation"] == "-"
    output = captured_logs.getvalue()
    for secret in (bearer, password, api_key, "ada.secret@example.com", "hunter2"):
        assert secret not in output


async def test_sql_statements_and_requests_are_counted_exactly(client: GraphQLClient) -> None:
    product = await create_product(client)
    statements = sample("gateway_sql_statements_total")
    durations = sample("gateway_sql_statement_duration_seconds_count")
    requests = sample("gateway_requests_total", operation="Product", outcome="ok")
    client.sql.reset()

    await client.post(PRODUCT, {"id": product})

    assert client.sql.count > 0
    assert sample("gateway_sql_statements_total") - statements == client.sql.count
    assert sample("gateway_sql_statement_duration_seconds_count") - durations == client.sql.count
    assert sample("gateway_requests_total", operation="Product", outcome="ok") - requests == 1


async def test_cache_hits_misses_and_invalidations_are_counted(client: GraphQLClient) -> None:
    product = await create_product(client)
    before = {status: sample("gateway_response_cache_requests_total", status=status) for status in ("HIT", "MISS")}
    invalidations = sample("gateway_response_cache_invalidations_total")

    miss = await client.post(PRODUCT, {"id": product})
    hit = await client.post(PRODUCT, {"id": product})
    await client.post(
        'mutation($id: ID!) { updateProduct(input: {id: $id, name: "Desk"}) { product { name } } }', {"id": product}
    )

    assert (miss.headers["x-cache"], hit.headers["x-cache"]) == ("MISS", "HIT")
    assert sample("gateway_response_cache_requests_total", status="MISS") - before["MISS"] == 1
    assert sample("gateway_response_cache_requests_total", status="HIT") - before["HIT"] == 1
    assert sample("gateway_response_cache_invalidations_total") - invalidations == 1


async def test_loader_batches_are_measured(client: GraphQLClient) -> None:
    ids = [await create_product(client) for _ in range(3)]
    count = sample("gateway_loader_batch_size_count", loader="ProductByIdLoader")
    total = sample("gateway_loader_batch_size_sum", loader="ProductByIdLoader")

    await client.execute(NODES, {"ids": ids})

    assert sample("gateway_loader_batch_size_count", loader="ProductByIdLoader") - count == 1
    assert sample("gateway_loader_batch_size_sum", loader="ProductByIdLoader") - total == 3


async def test_operation_labels_are_bounded(client: GraphQLClient, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(metrics, "_operations", set())
    monkeypatch.setattr(metrics, "MAX_OPERATION_LABELS", 1)
    other = sample("gateway_requests_total", operation="other", outcome="ok")

    await client.execute("query First { __typename }")
    await client.execute("query Second { __typename }")
    await client.execute("query First { __typename }")

    assert metrics._operations == {"First"}
    assert sample("gateway_requests_total", operation="other", outcome="ok") - other == 1


async def test_metrics_endpoint_is_not_rate_limited_and_reports_the_outbox(store_url: str, tmp_path: Path) -> None:
    settings = app_settings_for(store_url, tmp_path, GATEWAY_RATE_LIMIT_REQUESTS=1)
    async with serve_in_process(settings) as client:
        async with client.app.state.engine.begin() as connection:
            for index in range(3):
                await connection.execute(
                    OutboxEmail.__table__.insert().values(  # type: ignore[attr-defined]
                        kind="test",
                        message_id=f"<{index}@test>",
                        recipient="someone@example.com",
                        subject="Hi",
                        text_body="Hi",
                        html_body="<p>Hi</p>",
                        status=EmailStatus.PENDING,
                        next_attempt_at=utcnow(),
                        created_at=utcnow() - timedelta(minutes=index + 1),
                    )
                )
        refused = sample("gateway_rate_limit_refusals_total")
        await client.post("{ __typename }")
        limited = await client.post("{ __typename }")
        scrapes = [await client.http.get("/metrics") for _ in range(3)]

    assert limited.status_code == 429
    assert sample("gateway_rate_limit_refusals_total") - refused == 1
    assert [scrape.status_code for scrape in scrapes] == [200, 200, 200]
    assert scrapes[0].headers["content-type"].startswith("text/plain; version=")
    assert scrapes[0].headers["cache-control"] == "no-store"
    assert "ratelimit-limit" not in scrapes[0].headers
    assert "gateway_email_outbox_pending 3.0" in scrapes[0].text
    assert 180 <= sample("gateway_email_outbox_oldest_pending_age_seconds") < 240


async def test_metrics_can_be_turned_off(store_url: str, tmp_path: Path) -> None:
    async with serve_in_process(app_settings_for(store_url, tmp_path, GATEWAY_METRICS=False)) as client:
        assert (await client.http.get("/metrics")).status_code == 404
        assert (await client.post("{ __typename }")).status_code == 200


async def test_the_outbox_gauge_survives_a_store_that_is_down() -> None:
    engine = create_engine("postgresql+asyncpg://nobody@127.0.0.1:1/none")
    try:
        backlog = metrics.OutboxBacklog(create_sessionmaker(engine))
        metrics.OUTBOX_PENDING.set(7)
        await backlog.refresh()  # logs a warning, keeps the last value
        assert sample("gateway_email_outbox_pending") == 7
    finally:
        await engine.dispose()


async def test_upstream_calls_latency_and_breaker_state_are_measured() -> None:
    uninstall = metrics.install_hooks()
    statuses = iter([200, 503])
    transport = httpx.MockTransport(lambda request: httpx.Response(next(statuses)))
    config = UpstreamConfig(name="metrics-test", base_url="http://upstream.test", retries=0, breaker_failures=1)
    try:
        async with Upstream(config, transport=transport) as upstream:
            await upstream.request("GET", "/ok")
            with pytest.raises(Exception, match="HTTP 503"):
                await upstream.request("GET", "/down")
            with pytest.raises(Exception, match="circuit open"):
                await upstream.request("GET", "/refused")
    finally:
        uninstall()

    for outcome in ("success", "failure", "short_circuit"):
        assert sample("gateway_upstream_calls_total", provider="metrics-test", outcome=outcome) == 1
    assert sample("gateway_upstream_call_duration_seconds_count", provider="metrics-test") == 3
    assert sample("gateway_circuit_breaker_state", provider="metrics-test") == 2  # open


async def test_development_cost_extension_is_never_cached(store_url: str, tmp_path: Path) -> None:
    async with serve_in_process(app_settings_for(store_url, tmp_path, GATEWAY_COST_EXTENSION=True)) as client:
        product = await create_product(client)
        miss = (await client.post(PRODUCT, {"id": product})).json()
        hit = (await client.post(PRODUCT, {"id": product})).json()
        entries = list(client.app.state.response_cache.store._entries.values())

    assert miss["extensions"]["cost"]["cacheStatus"] == "MISS"
    assert miss["extensions"]["cost"]["sqlStatements"] >= 1
    assert miss["extensions"]["cost"]["upstreamCalls"] == 0
    assert hit["extensions"]["cost"]["cacheStatus"] == "HIT"
    assert hit["extensions"]["cost"]["sqlStatements"] == 0
    assert hit["extensions"]["cost"]["durationMs"] >= 0
    assert entries
    assert all(b'"cost"' not in entry.value for entry in entries)


async def test_production_never_carries_the_cost_extension(store_url: str, tmp_path: Path) -> None:
    settings = app_settings_for(
        store_url, tmp_path, GATEWAY_ENV="production", GATEWAY_COST_EXTENSION=True, GATEWAY_JWT_SECRET="p" * 40
    )
    async with serve_in_process(settings) as client:
        body = (await client.post("{ __typename }")).json()
    assert "extensions" not in body


async def test_development_carries_the_cost_extension_unless_turned_off(
    store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GATEWAY_COST_EXTENSION")  # the test suite turns it off for every other test
    async with serve_in_process(app_settings_for(store_url, tmp_path)) as client:
        default = (await client.post("{ __typename }")).json()
    async with serve_in_process(app_settings_for(store_url, tmp_path, GATEWAY_COST_EXTENSION=False)) as client:
        turned_off = (await client.post("{ __typename }")).json()

    assert default["extensions"]["cost"]["sqlStatements"] == 0
    assert "extensions" not in turned_off
