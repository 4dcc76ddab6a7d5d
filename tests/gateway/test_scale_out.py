"""Scale-out: two gateway processes (uvicorn, each with its email worker) on ONE PostgreSQL database and ONE Redis
(a key prefix of their own), mailing through a real SMTP server (aiosmtpd). What must hold across processes:

- no stale read: a PRIVATE entry cached (and near-cached) by B is not served after a write through A
  (`test_response_cache.py` proves the same for a PUBLIC product, with the email workers off);
- one rate-limit allowance per subject, not one per process (`test_rate_limit.py` proves it for the socket
  address on SQLite; here for a client behind a trusted proxy, on the production stack);
- every outbox email is delivered exactly once while both workers compete for the rows.

PostgreSQL and Redis are required: locally a missing one skips these tests with the reason, under CI=true it fails
them (`tests/support/services.py`)."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlmodel import col

from gateway.rate_limit import RATE_LIMITED
from gateway.settings import load_settings
from integrations.store.engine import create_engine
from integrations.store.models import EmailStatus, OutboxEmail
from tests.conftest import empty_tables, token_for
from tests.support.gateway_process import gateway_process
from tests.support.smtp import SMTPServer

ADMIN = {"Authorization": f"Bearer {token_for(load_settings(_env_file=None))}"}
CREATE_CUSTOMER = """mutation($email: String!) {
  createCustomer(input: {name: "Grace Hopper", email: $email}) { customer { id } userErrors { code } } }"""
CREATE_PRODUCT = """mutation($sku: String!) {
  createProduct(input: {sku: $sku, name: "COBOL manual", price: {amount: 1999, currency: "USD"}, stock: 1000}) {
    product { id } userErrors { code } } }"""
CUSTOMER = "query Customer($id: ID!) { customer(id: $id) { id name email } }"
RENAME = """mutation Rename($id: ID!, $name: String!) {
  updateCustomer(input: {id: $id, name: $name}) { customer { name } userErrors { code } } }"""
PLACE = """mutation($input: PlaceOrderInput!) {
  placeOrder(input: $input) { order { id number status } userErrors { code message } } }"""


@pytest.fixture
async def postgres_store(postgresql_url: str) -> str:
    await empty_tables(postgresql_url)
    return postgresql_url


@contextmanager
def two_gateways(store_url: str, redis_url: str, smtp: SMTPServer, **extra: str) -> Iterator[tuple[str, str]]:
    """Processes A and B, sharing the store, Redis (one fresh prefix) and the SMTP server; both run the worker."""
    environment = {
        "DATABASE_URL": store_url,
        "REDIS_URL": redis_url,
        "GATEWAY_CACHE_PREFIX": f"gw-test-{uuid.uuid4().hex[:12]}:",
        "GATEWAY_EMAIL_WORKER": "true",
        "EMAIL_URL": smtp.url(),
        "EMAIL_FROM": "Scale Shop <orders@scale.example>",
        "EMAIL_POLL_INTERVAL": "0.05",
        "GATEWAY_RATE_LIMIT_REQUESTS": "100000",
    } | extra
    with ExitStack() as stack:
        a = stack.enter_context(gateway_process(environment))
        b = stack.enter_context(gateway_process(environment))
        yield a, b


async def execute(http: httpx.AsyncClient, base: str, query: str, variables: dict[str, Any]) -> dict[str, Any]:
    response = await http.post(f"{base}/graphql", json={"query": query, "variables": variables})
    body = response.json()
    assert response.status_code == 200, body
    assert "errors" not in body, body
    data: dict[str, Any] = body["data"]
    return data


async def test_no_stale_read_through_one_process_after_a_write_through_the_other(
    postgres_store: str, redis_url: str
) -> None:
    with SMTPServer() as smtp, two_gateways(postgres_store, redis_url, smtp) as (a, b):
        async with httpx.AsyncClient(timeout=10, headers=ADMIN) as http:
            created = await execute(http, a, CREATE_CUSTOMER, {"email": "grace@example.com"})
            customer = created["createCustomer"]["customer"]["id"]

            async def read_b() -> httpx.Response:
                return await http.post(f"{b}/graphql", json={"query": CUSTOMER, "variables": {"id": customer}})

            assert (await read_b()).headers["x-cache"] == "MISS"
            for round_ in range(10):
                cached = await read_b()
                assert cached.headers["x-cache"] == "HIT", f"round {round_}: B must answer from its cache"
                assert cached.headers["cache-control"].startswith("private")
                name = f"Grace {round_}"
                renamed = await execute(http, a, RENAME, {"id": customer, "name": name})
                assert renamed["updateCustomer"]["customer"]["name"] == name

                fresh = await read_b()
                assert fresh.json()["data"]["customer"]["name"] == name, f"round {round_}: stale read through B"
                assert fresh.headers["x-cache"] == "MISS"


async def test_rate_limits_are_one_allowance_across_processes(postgres_store: str, redis_url: str) -> None:
    limit = 6
    settings = {"GATEWAY_RATE_LIMIT_REQUESTS": str(limit), "GATEWAY_TRUSTED_PROXIES": "127.0.0.1"}
    query = {"query": "query Name { __typename }"}
    with SMTPServer() as smtp, two_gateways(postgres_store, redis_url, smtp, **settings) as (a, b):
        async with httpx.AsyncClient(timeout=10) as http:

            async def ask(base: str, client: str) -> httpx.Response:
                return await http.post(f"{base}/graphql", json=query, headers={"X-Forwarded-For": client})

            answers = [await ask(base, "203.0.113.7") for _ in range(limit) for base in (a, b)]
            statuses = [answer.status_code for answer in answers]
            # One shared allowance: the 7th request is refused, whichever process it reaches (two private
            # allowances would have admitted all 12).
            assert statuses == [200] * limit + [429] * limit, statuses
            assert [answer.headers["ratelimit-remaining"] for answer in answers[:limit]] == [
                str(limit - n) for n in range(1, limit + 1)
            ]
            assert answers[-1].json()["errors"][0]["extensions"]["code"] == RATE_LIMITED
            # The allowance is the client's, not the processes': another client behind the proxy is still served.
            assert (await ask(a, "203.0.113.8")).status_code == 200
            assert (await ask(b, "203.0.113.9")).status_code == 200


async def outbox(store_url: str) -> list[tuple[str, str]]:
    engine = create_engine(store_url)
    try:
        async with engine.connect() as connection:
            statement = select(col(OutboxEmail.message_id), col(OutboxEmail.status))
            return [(str(row[0]), str(row[1])) for row in await connection.execute(statement)]
    finally:
        await engine.dispose()


async def test_each_outbox_email_is_sent_exactly_once_while_both_workers_run(
    postgres_store: str, redis_url: str
) -> None:
    orders = 40
    with SMTPServer() as smtp, two_gateways(postgres_store, redis_url, smtp) as (a, b):
        async with httpx.AsyncClient(timeout=30, headers=ADMIN) as http:
            created = await execute(http, a, CREATE_CUSTOMER, {"email": "grace@example.com"})
            customer = created["createCustomer"]["customer"]["id"]
            product = (await execute(http, b, CREATE_PRODUCT, {"sku": "COBOL"}))["createProduct"]["product"]["id"]

            async def place(n: int) -> str:
                order_input = {
                    "customerId": customer,
                    "lines": [{"productId": product, "quantity": 1}],
                    "paymentMethod": "pm_card_visa",
                    "idempotencyKey": f"scale-{n}",
                }
                data = await execute(http, (a, b)[n % 2], PLACE, {"input": order_input})
                assert data["placeOrder"]["userErrors"] == []
                assert data["placeOrder"]["order"]["status"] == "PAID"
                return str(data["placeOrder"]["order"]["number"])

            # In bursts, so that rows pile up while both workers poll every 50 ms and race for them.
            numbers: list[str] = []
            for burst in range(0, orders, 10):
                numbers += await asyncio.gather(*(place(n) for n in range(burst, burst + 10)))
            assert len(set(numbers)) == orders

            async with asyncio.timeout(60):
                while True:
                    rows = await outbox(postgres_store)
                    if len(rows) == orders and all(status == EmailStatus.SENT for _, status in rows):
                        break
                    await asyncio.sleep(0.1)
            await asyncio.sleep(1.0)  # a duplicate send in flight would land now

    rows = await outbox(postgres_store)
    assert len(rows) == orders
    assert {status for _, status in rows} == {EmailStatus.SENT}
    received = Counter(smtp.handler.message_ids())
    duplicates = {message_id: count for message_id, count in received.items() if count > 1}
    assert duplicates == {}, f"sent more than once: {duplicates}"
    assert set(received) == {message_id for message_id, _ in rows}
    subjects = sorted(str(r.message["Subject"]) for r in smtp.received)
    assert subjects == sorted(f"Gateway Shop: your order {number}" for number in numbers)
