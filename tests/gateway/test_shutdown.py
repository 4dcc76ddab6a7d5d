"""Graceful shutdown of `gateway serve` (a real process) on SIGTERM:

- an in-flight request (a payment against a slow Stripe, a real loopback server) completes with a full 200 while
  the listening socket already refuses new connections, and the process exits 0 within the graceful timeout;
- a request stuck longer than `--graceful-timeout` does not hold the process: it exits 0 soon after the timeout;
- the email worker finishes the message it is sending to a slow SMTP peer (aiosmtpd): delivered once, marked
  SENT; the emails of its batch it had not started are released at once for other workers, and a gateway started
  afterwards sends those, not the first one again;
- a worker whose message takes longer than the graceful timeout is cancelled, and still releases the rest.

The store is SQLite (one file, shared by the test and the gateway processes it starts)."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlmodel import col

from gateway.settings import load_settings
from integrations.store.engine import create_engine, create_sessionmaker
from integrations.store.models import EmailStatus, OutboxEmail
from tests.conftest import empty_tables, token_for
from tests.resolvers.email.conftest import enqueue_emails as enqueue_sessions
from tests.support.gateway_serve import ServedGateway, gateway_serve
from tests.support.http_server import Reply, ScriptedServer
from tests.support.localstripe import API_KEY
from tests.support.smtp import SMTPServer

ADMIN = {"Authorization": f"Bearer {token_for(load_settings(_env_file=None))}"}
SEED = """mutation {
  createCustomer(input: {email: "grace@example.com", name: "Grace Hopper"}) { customer { id } }
  createProduct(input: {sku: "COBOL", name: "COBOL manual", price: {amount: 1999, currency: "USD"}, stock: 10}) {
    product { id } } }"""
PLACE = """mutation($input: PlaceOrderInput!) {
  placeOrder(input: $input) { order { number status } userErrors { code message } } }"""


def intent(status: str) -> bytes:
    """A Stripe PaymentIntent as the scripted Stripe answers it."""
    return json.dumps(
        {
            "id": "pi_shutdown_1",
            "object": "payment_intent",
            "amount": 1999,
            "currency": "usd",
            "status": status,
            "created": 1_700_000_000,
            "latest_charge": {"id": "ch_shutdown_1", "amount_refunded": 0},
        }
    ).encode()


@pytest.fixture
async def sqlite_store(sqlite_url: str) -> str:
    await empty_tables(sqlite_url)
    return sqlite_url


def refuses_connections(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
    except ConnectionRefusedError:
        return True
    return False


async def exit_status(gateway: ServedGateway, within: float) -> int | None:
    return await asyncio.to_thread(gateway.wait, within)


@pytest.fixture
async def slow_stripe() -> Any:
    async with ScriptedServer() as server:
        yield server


def stripe_env(store: str, stripe: ScriptedServer, tmp_path: Path, **extra: str) -> dict[str, str]:
    return {
        "DATABASE_URL": store,
        "EMAIL_URL": f"file://{tmp_path / 'mail'}",
        "GATEWAY_EMAIL_WORKER": "false",
        "PAYMENTS_PROVIDER": "stripe",
        "STRIPE_API_KEY": API_KEY,
        "STRIPE_API_BASE": stripe.url,
        "PAYMENTS_RETRIES": "0",
        "GATEWAY_RESPONSE_CACHE": "false",
    } | extra


async def start_order(http: httpx.AsyncClient, gateway: ServedGateway) -> asyncio.Task[httpx.Response]:
    seeded = (await http.post(f"{gateway.url}/graphql", json={"query": SEED}, headers=ADMIN)).json()["data"]
    order = {
        "customerId": seeded["createCustomer"]["customer"]["id"],
        "lines": [{"productId": seeded["createProduct"]["product"]["id"], "quantity": 1}],
        "paymentMethod": "pm_card_visa",
        "idempotencyKey": "shutdown-1",
    }
    body = {"query": PLACE, "variables": {"input": order}}
    return asyncio.create_task(http.post(f"{gateway.url}/graphql", json=body, headers=ADMIN))


async def until(condition: Any, within: float, what: str) -> None:
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"not within {within} s: {what}")
        await asyncio.sleep(0.02)


async def test_an_in_flight_request_completes_and_new_connections_are_refused(
    sqlite_store: str, slow_stripe: ScriptedServer, tmp_path: Path
) -> None:
    slow_stripe.script(Reply(200, body=intent("requires_confirmation")), Reply(200, body=intent("succeeded"), delay=2))
    slow_stripe.default = Reply(200, body=intent("succeeded"))
    env = stripe_env(sqlite_store, slow_stripe, tmp_path)
    with gateway_serve(env, "--graceful-timeout", "10", cwd=tmp_path) as gateway:
        async with httpx.AsyncClient(timeout=20) as http:
            placing = await start_order(http, gateway)
            await until(lambda: len(slow_stripe.received) == 2, 10, "the payment is being confirmed")

            gateway.terminate()
            stopped_at = time.monotonic()
            await until(lambda: refuses_connections(gateway.port), 2, "new connections are refused")
            assert not placing.done(), "the listening socket must close while the request is still in flight"

            response = await placing
        status = await exit_status(gateway, 10)
        elapsed = time.monotonic() - stopped_at
        logs = gateway.logs()

    assert response.status_code == 200
    body = response.json()
    assert "errors" not in body, body
    assert body["data"]["placeOrder"]["order"]["status"] == "PAID"
    assert body["data"]["placeOrder"]["userErrors"] == []
    assert status == 0, logs[-3000:]
    assert elapsed < 10


async def test_a_stuck_request_does_not_hold_shutdown_beyond_the_graceful_timeout(
    sqlite_store: str, slow_stripe: ScriptedServer, tmp_path: Path
) -> None:
    slow_stripe.script(Reply(200, body=intent("requires_confirmation")), Reply(200, body=intent("succeeded"), delay=60))
    env = stripe_env(sqlite_store, slow_stripe, tmp_path, PAYMENTS_READ_TIMEOUT="60")
    with gateway_serve(env, "--graceful-timeout", "1", cwd=tmp_path) as gateway:
        async with httpx.AsyncClient(timeout=20) as http:
            placing = await start_order(http, gateway)
            await until(lambda: len(slow_stripe.received) == 2, 10, "the payment is being confirmed")

            gateway.terminate()
            stopped_at = time.monotonic()
            status = await exit_status(gateway, 10)
            elapsed = time.monotonic() - stopped_at
            outcome = (await asyncio.gather(placing, return_exceptions=True))[0]
        logs = gateway.logs()

    assert status == 0, logs[-3000:]
    assert elapsed < 5, f"exited {elapsed:.1f} s after SIGTERM with --graceful-timeout 1"
    assert "timeout graceful shutdown exceeded" in logs
    assert not (isinstance(outcome, httpx.Response) and outcome.status_code == 200 and "errors" not in outcome.json())


async def enqueue_emails(store: str, count: int) -> list[str]:
    engine = create_engine(store)
    try:
        return await enqueue_sessions(create_sessionmaker(engine), count)
    finally:
        await engine.dispose()


async def outbox(store: str) -> list[OutboxEmail]:
    engine = create_engine(store)
    try:
        async with create_sessionmaker(engine)() as session:
            return list((await session.scalars(select(OutboxEmail).order_by(col(OutboxEmail.id)))).all())
    finally:
        await engine.dispose()


@pytest.fixture
def slow_smtp() -> Iterator[SMTPServer]:
    with SMTPServer() as smtp:
        yield smtp


def mail_env(store: str, smtp: SMTPServer) -> dict[str, str]:
    return {
        "DATABASE_URL": store,
        "EMAIL_URL": smtp.url(),
        "GATEWAY_EMAIL_WORKER": "true",
        "EMAIL_POLL_INTERVAL": "0.05",
    }


async def test_the_worker_finishes_its_current_email_and_releases_the_rest(
    sqlite_store: str, slow_smtp: SMTPServer, tmp_path: Path
) -> None:
    first, *rest = await enqueue_emails(sqlite_store, 3)
    slow_smtp.handler.accept_delay = 1.5
    with gateway_serve(mail_env(sqlite_store, slow_smtp), "--graceful-timeout", "10", cwd=tmp_path) as gateway:
        started = await asyncio.to_thread(slow_smtp.handler.data_started.wait, 10)
        assert started, "the worker never began sending"
        gateway.terminate()
        status = await exit_status(gateway, 10)
        assert status == 0, gateway.logs()[-3000:]

    assert slow_smtp.handler.message_ids() == [first]
    rows = await outbox(sqlite_store)
    assert [(r.message_id, r.status, r.attempts, r.locked_until) for r in rows] == [
        (first, EmailStatus.SENT, 1, None),
        *((message_id, EmailStatus.PENDING, 0, None) for message_id in rest),  # released, not left to expire
    ]

    # The next gateway sends what was left, and not the first one again.
    slow_smtp.handler.accept_delay = 0.0
    with gateway_serve(mail_env(sqlite_store, slow_smtp), cwd=tmp_path) as gateway:
        await until(lambda: len(slow_smtp.received) == 3, 10, "the released emails are sent")
        await asyncio.sleep(0.3)  # a few more polls: nothing else may be sent
        gateway.terminate()
        assert await exit_status(gateway, 10) == 0, gateway.logs()[-3000:]
    assert Counter(slow_smtp.handler.message_ids()) == Counter([first, *rest])
    assert {row.status for row in await outbox(sqlite_store)} == {EmailStatus.SENT}


async def test_a_worker_out_of_time_is_cancelled_and_still_releases_the_emails_it_had_not_started(
    sqlite_store: str, slow_smtp: SMTPServer, tmp_path: Path
) -> None:
    first, *rest = await enqueue_emails(sqlite_store, 3)
    slow_smtp.handler.accept_delay = 8.0  # under the SMTP client's 10 s timeout: only shutdown cuts it short
    with gateway_serve(mail_env(sqlite_store, slow_smtp), "--graceful-timeout", "1", cwd=tmp_path) as gateway:
        started = await asyncio.to_thread(slow_smtp.handler.data_started.wait, 10)
        assert started, "the worker never began sending"
        gateway.terminate()
        stopped_at = time.monotonic()
        status = await exit_status(gateway, 10)
        elapsed = time.monotonic() - stopped_at
        assert status == 0, gateway.logs()[-3000:]
    assert elapsed < 5, f"exited {elapsed:.1f} s after SIGTERM with --graceful-timeout 1"

    rows = await outbox(sqlite_store)
    # The interrupted email's fate is unknown (the peer may have it): it keeps its lease and is retried when it
    # expires, never marked sent or failed; the two never started are free for the next worker now.
    assert (rows[0].message_id, rows[0].status, rows[0].attempts) == (first, EmailStatus.PENDING, 0)
    assert rows[0].locked_until is not None
    assert [(r.message_id, r.status, r.attempts, r.locked_until) for r in rows[1:]] == [
        (message_id, EmailStatus.PENDING, 0, None) for message_id in rest
    ]
