"""/readyz reports each dependency by name: the database always, Redis when REDIS_URL is set; and the circuit
breaker of each upstream (payments with Stripe), against a real localstripe: an open circuit is reported but leaves
the instance ready (200, "degraded"), while a database or Redis failure makes it 503."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis
from redis.exceptions import RedisError

from gateway.app import create_app
from gateway.settings import load_settings
from tests.conftest import app_settings_for, empty_tables, serve_in_process
from tests.support.localstripe import API_KEY, run_localstripe
from tests.support.processes import stop
from tests.support.services import unavailable

REDIS_URL = "redis://127.0.0.1:6379/0"


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@asynccontextmanager
async def serving(**settings: str) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(load_settings(_env_file=None, **settings))
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as http,
    ):
        yield http


@pytest.fixture
async def redis_url() -> str:
    client = Redis.from_url(REDIS_URL, socket_connect_timeout=1)
    try:
        await client.ping()
    except (RedisError, OSError) as exc:
        unavailable(f"Redis not reachable at {REDIS_URL}: {exc}")
    finally:
        await client.aclose()
    return REDIS_URL


async def test_ready_with_database_and_redis(sqlite_url: str, redis_url: str) -> None:
    async with serving(DATABASE_URL=sqlite_url, REDIS_URL=redis_url) as http:
        response = await http.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "checks": {"database": "ok", "redis": "ok"}, "circuits": {}}


async def test_not_ready_when_redis_is_down(sqlite_url: str) -> None:
    async with serving(DATABASE_URL=sqlite_url, REDIS_URL=f"redis://127.0.0.1:{closed_port()}/0") as http:
        response = await http.get("/readyz")
    assert response.status_code == 503
    checks = response.json()["checks"]
    assert checks["database"] == "ok"
    assert checks["redis"].startswith("unavailable")


async def test_not_ready_when_the_database_is_unreachable_but_queries_fail_cleanly() -> None:
    url = f"postgresql+asyncpg://postgres@127.0.0.1:{closed_port()}/nowhere"
    async with serving(DATABASE_URL=url) as http:
        assert (await http.get("/healthz")).status_code == 200
        response = await http.get("/readyz")
        assert response.status_code == 503
        assert response.json()["checks"]["database"].startswith("unavailable")

        query = await http.post("/graphql", json={"query": "{ customers { totalCount } }"})
        assert query.status_code == 200
        error = query.json()["errors"][0]
        assert error["extensions"]["code"] == "SERVICE_UNAVAILABLE"
        assert "Traceback" not in error["message"]


SEED = """mutation {
  createCustomer(input: {email: "grace@example.com", name: "Grace Hopper"}) { customer { id } }
  createProduct(input: {sku: "COBOL", name: "COBOL manual", price: {amount: 1999, currency: "USD"}, stock: 10}) {
    product { id } } }"""
PLACE = """mutation($input: PlaceOrderInput!) {
  placeOrder(input: $input) { order { status } userErrors { code } } }"""


async def test_circuits_are_reported_and_an_open_one_leaves_the_instance_ready(sqlite_url: str, tmp_path: Path) -> None:
    await empty_tables(sqlite_url)
    with run_localstripe() as localstripe:  # a process of its own: this test stops it
        settings = app_settings_for(
            sqlite_url,
            tmp_path,
            PAYMENTS_PROVIDER="stripe",
            STRIPE_API_KEY=API_KEY,
            STRIPE_API_BASE=localstripe.url,
            PAYMENTS_RETRIES=0,
            PAYMENTS_CONNECT_TIMEOUT=0.5,
            PAYMENTS_BREAKER_FAILURES=2,
            PAYMENTS_BREAKER_COOLDOWN=300,
        )
        async with serve_in_process(settings) as client:
            seeded = await client.execute(SEED)

            async def place(key: str) -> Any:
                order = {
                    "customerId": seeded["createCustomer"]["customer"]["id"],
                    "lines": [{"productId": seeded["createProduct"]["product"]["id"], "quantity": 1}],
                    "paymentMethod": "pm_card_visa",
                    "idempotencyKey": key,
                }
                return (await client.execute(PLACE, {"input": order}))["placeOrder"]

            assert (await place("paid"))["order"]["status"] == "PAID"
            ready = await client.http.get("/readyz")
            assert ready.status_code == 200
            assert ready.json() == {"status": "ok", "checks": {"database": "ok"}, "circuits": {"payments": "closed"}}

            stop(localstripe.process)  # Stripe goes away
            for key in ("down-1", "down-2"):  # PAYMENTS_BREAKER_FAILURES failed calls open the circuit
                assert [e["code"] for e in (await place(key))["userErrors"]] == ["PAYMENT_PROVIDER_UNAVAILABLE"]

            degraded = await client.http.get("/readyz")
            assert degraded.status_code == 200  # still ready: the rest of the graph answers
            assert degraded.json() == {
                "status": "degraded",
                "checks": {"database": "ok"},
                "circuits": {"payments": "open"},
            }
            # And the circuit is really open: the next payment fails fast, without touching the network.
            upstream = client.app.state.services.payments.upstream
            before = upstream.stats["short_circuit"]
            assert [e["code"] for e in (await place("down-3"))["userErrors"]] == ["PAYMENT_PROVIDER_UNAVAILABLE"]
            assert upstream.stats["short_circuit"] == before + 1


async def test_no_circuits_with_the_local_payment_provider(sqlite_url: str, tmp_path: Path) -> None:
    async with serve_in_process(app_settings_for(sqlite_url, tmp_path)) as client:
        response = await client.http.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "checks": {"database": "ok"}, "circuits": {}}


async def test_a_database_failure_is_503_whatever_the_circuits(tmp_path: Path) -> None:
    url = f"postgresql+asyncpg://postgres@127.0.0.1:{closed_port()}/nowhere"
    settings = {"PAYMENTS_PROVIDER": "stripe", "STRIPE_API_KEY": API_KEY, "STRIPE_API_BASE": "http://127.0.0.1:9"}
    async with serving(DATABASE_URL=url, EMAIL_URL=f"file://{tmp_path / 'mail'}", **settings) as http:
        response = await http.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["checks"]["database"].startswith("unavailable")
    assert body["circuits"] == {"payments": "closed"}
