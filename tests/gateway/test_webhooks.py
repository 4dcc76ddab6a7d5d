"""POST /webhooks/stripe: signature checked on the raw bytes, events applied once, cached payment data dropped."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from integrations.payments.signature import sign
from integrations.store.models import WebhookEvent
from tests.conftest import GraphQLClient, app_settings_for, serve_in_process
from tests.schema.test_orders_stripe import PLACE, WEBHOOK_SECRET, order_input, seed_shop, stripe_settings
from tests.support.localstripe import API_KEY, LocalStripe

ORDER = """query($id: ID!) { node(id: $id) { ... on Order {
  status payment { status refunded { amount } } lines { product { stock } } } } }"""


@pytest.fixture
async def local_client(store_url: str, tmp_path: Path) -> AsyncIterator[GraphQLClient]:
    settings = app_settings_for(store_url, tmp_path, STRIPE_WEBHOOK_SECRET=WEBHOOK_SECRET)
    async with serve_in_process(settings) as client:
        yield client


async def deliver(
    client: GraphQLClient, event: dict[str, Any], *, secret: str = WEBHOOK_SECRET, age: int = 0
) -> httpx.Response:
    """Sign and post `event` as Stripe would, `age` seconds ago."""
    body = orjson.dumps(event)
    signature = sign(body, secret, int(time.time()) - age)
    return await client.http.post(
        "/webhooks/stripe", content=body, headers={"Stripe-Signature": signature, "Content-Type": "application/json"}
    )


def intent_event(event_id: str, event_type: str, intent: dict[str, Any]) -> dict[str, Any]:
    return {"id": event_id, "object": "event", "type": event_type, "data": {"object": intent}}


async def pending_order(client: GraphQLClient) -> tuple[str, str, dict[str, Any]]:
    """An order waiting for 3-D Secure with the local provider; returns (order id, reference, intent object)."""
    customer, product = await seed_shop(client, stock=10)
    placed = (await client.execute(PLACE, order_input(customer, product, "hook", "pm_card_authenticationRequired", 3)))[
        "placeOrder"
    ]
    assert placed["order"]["status"] == "PENDING"
    reference = placed["order"]["payment"]["reference"]
    intent = {
        "id": reference,
        "object": "payment_intent",
        "amount": 3 * 1999,
        "currency": "usd",
        "created": int(time.time()),
        "status": "requires_payment_method",
        "last_payment_error": {"code": "payment_intent_authentication_failure", "message": "Authentication failed."},
    }
    return placed["order"]["id"], reference, intent


async def test_a_signed_failure_event_fails_the_order_once(local_client: GraphQLClient) -> None:
    order_id, _, intent = await pending_order(local_client)
    response = await deliver(local_client, intent_event("evt_1", "payment_intent.payment_failed", intent))
    assert response.status_code == 200
    assert response.json() == {"received": True, "outcome": "applied"}
    order = (await local_client.execute(ORDER, {"id": order_id}))["node"]
    assert order["status"] == "PAYMENT_FAILED"
    assert order["lines"] == [{"product": {"stock": 10}}]

    replay = await deliver(local_client, intent_event("evt_1", "payment_intent.payment_failed", intent))
    assert replay.json() == {"received": True, "outcome": "duplicate"}
    assert (await local_client.execute(ORDER, {"id": order_id}))["node"] == order
    assert await local_client.count(WebhookEvent) == 1


async def test_a_late_success_event_does_not_resurrect_a_failed_order(local_client: GraphQLClient) -> None:
    order_id, _, intent = await pending_order(local_client)
    await deliver(local_client, intent_event("evt_fail", "payment_intent.payment_failed", intent))
    succeeded = {**intent, "status": "succeeded", "last_payment_error": None}
    response = await deliver(local_client, intent_event("evt_late", "payment_intent.succeeded", succeeded))
    assert response.status_code == 200
    order = (await local_client.execute(ORDER, {"id": order_id}))["node"]
    assert order["status"] == "PAYMENT_FAILED"
    assert order["lines"] == [{"product": {"stock": 10}}]  # released once, not twice


@pytest.mark.parametrize(
    ("mangle", "reason"),
    [
        ({"secret": "whsec_wrong"}, "signature does not match the payload"),
        ({"age": 301}, "signature timestamp is outside the tolerance"),
        ({"age": -301}, "signature timestamp is outside the tolerance"),
    ],
)
async def test_bad_or_stale_signatures_are_refused_and_change_nothing(
    local_client: GraphQLClient, mangle: dict[str, Any], reason: str
) -> None:
    order_id, _, intent = await pending_order(local_client)
    response = await deliver(local_client, intent_event("evt_bad", "payment_intent.payment_failed", intent), **mangle)
    assert response.status_code == 400
    assert response.json() == {"error": reason}
    assert (await local_client.execute(ORDER, {"id": order_id}))["node"]["status"] == "PENDING"
    assert await local_client.count(WebhookEvent) == 0


async def test_a_body_changed_after_signing_is_refused(local_client: GraphQLClient) -> None:
    order_id, _, intent = await pending_order(local_client)
    body = orjson.dumps(intent_event("evt_x", "payment_intent.payment_failed", intent))
    signature = sign(body, WEBHOOK_SECRET, int(time.time()))
    tampered = body.replace(b"payment_failed", b"succeeded")
    response = await local_client.http.post(
        "/webhooks/stripe", content=tampered, headers={"Stripe-Signature": signature}
    )
    assert response.status_code == 400
    assert (await local_client.execute(ORDER, {"id": order_id}))["node"]["status"] == "PENDING"


@pytest.mark.parametrize(
    ("body", "headers", "status"),
    [
        (b"{}", {}, 400),  # no signature
        (b"{}", {"Stripe-Signature": "nonsense"}, 400),
        (b"not json", None, 400),  # validly signed, but not JSON
        (b"[1, 2]", None, 400),  # validly signed, not an event object
        (b'{"id": "evt_no_data", "type": "charge.refunded"}', None, 400),  # a handled type without its object
    ],
)
async def test_malformed_deliveries_are_refused(
    local_client: GraphQLClient, body: bytes, headers: dict[str, str] | None, status: int
) -> None:
    if headers is None:
        headers = {"Stripe-Signature": sign(body, WEBHOOK_SECRET, int(time.time()))}
    response = await local_client.http.post("/webhooks/stripe", content=body, headers=headers)
    assert response.status_code == status
    assert "error" in response.json()
    assert await local_client.count(WebhookEvent) == 0


async def test_other_event_types_are_acknowledged_and_ignored(local_client: GraphQLClient) -> None:
    response = await deliver(local_client, {"id": "evt_c", "type": "customer.created", "data": {"object": {}}})
    assert response.json() == {"received": True, "outcome": "ignored"}


async def test_oversize_events_and_other_methods_are_refused(local_client: GraphQLClient) -> None:
    assert (await local_client.http.get("/webhooks/stripe")).status_code == 405
    big = await local_client.http.post("/webhooks/stripe", content=b"x" * (600 * 1024))
    assert big.status_code == 413


async def test_without_a_webhook_secret_there_is_no_webhook_route(client: GraphQLClient) -> None:
    assert (await client.http.post("/webhooks/stripe", content=b"{}")).status_code == 404


async def test_charge_refunded_updates_the_order_and_drops_the_cached_payment(
    store_url: str, tmp_path: Path, localstripe: LocalStripe
) -> None:
    async with serve_in_process(stripe_settings(store_url, tmp_path, localstripe.url)) as client:
        customer, product = await seed_shop(client)
        placed = await client.execute(PLACE, order_input(customer, product, "dashboard-refund", quantity=2))
        order_id = placed["placeOrder"]["order"]["id"]
        reference = placed["placeOrder"]["order"]["payment"]["reference"]
        warm = (await client.execute(ORDER, {"id": order_id}))["node"]
        assert warm["payment"] == {"status": "SUCCEEDED", "refunded": {"amount": 0}}

        with localstripe.client() as stripe:  # refunded outside the gateway (e.g. in Stripe's dashboard)
            stripe.post("/v1/refunds", data={"payment_intent": reference, "amount": "500"}).raise_for_status()
            charge = stripe.get(f"/v1/payment_intents/{reference}").json()["latest_charge"]
        assert (await client.execute(ORDER, {"id": order_id}))["node"] == warm  # still the cached view

        response = await deliver(client, {"id": "evt_refund", "type": "charge.refunded", "data": {"object": charge}})
        assert response.json() == {"received": True, "outcome": "applied"}
        fresh = (await client.execute(ORDER, {"id": order_id}))["node"]
        assert fresh["status"] == "PARTIALLY_REFUNDED"
        assert fresh["payment"] == {"status": "PARTIALLY_REFUNDED", "refunded": {"amount": 500}}
        assert API_KEY not in response.text
