"""Orders against Stripe's API as served by localstripe (a real process), on SQLite and PostgreSQL.

localstripe ignores ``Idempotency-Key``, so "one order, one payment" here is the gateway's own guarantee.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from integrations.payments.stripe import StripePaymentProvider
from integrations.store.models import Order, OutboxEmail, Payment, WebhookEvent
from tests.conftest import GraphQLClient, app_settings_for, serve_in_process
from tests.support.http_server import Reply, ScriptedServer, closed_port
from tests.support.live_server import live_server
from tests.support.localstripe import API_KEY, AUTHENTICATION_REQUIRED_NUMBER, DECLINED_CARD, LocalStripe

WEBHOOK_SECRET = "whsec_test_gateway"
PLACE = """
mutation($input: PlaceOrderInput!) {
  placeOrder(input: $input) {
    order { id number status payment { status reference amount { amount } } emails { status } }
    userErrors { field code message }
  }
}"""
ORDERS = "{ orders(first: 50) { edges { node { number status payment { status reference } } } } }"


def stripe_settings(store_url: str, tmp_path: Path, api_base: str, **overrides: object) -> Any:
    values: dict[str, object] = {
        "PAYMENTS_PROVIDER": "stripe",
        "STRIPE_API_KEY": API_KEY,
        "STRIPE_API_BASE": api_base,
        "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "PAYMENTS_RETRIES": 1,
        "PAYMENTS_READ_TIMEOUT": 2.0,
        "PAYMENTS_CONNECT_TIMEOUT": 0.5,
    }
    return app_settings_for(store_url, tmp_path, **(values | overrides))


@pytest.fixture
async def stripe_client(store_url: str, tmp_path: Path, localstripe: LocalStripe) -> AsyncIterator[GraphQLClient]:
    async with serve_in_process(stripe_settings(store_url, tmp_path, localstripe.url)) as client:
        yield client


async def seed_shop(client: GraphQLClient, stock: int = 100) -> tuple[str, str]:
    customer = await client.execute(
        'mutation { createCustomer(input: {email: "grace@example.com", name: "Grace Hopper"}) { customer { id } } }'
    )
    product = await client.execute(
        'mutation($stock: Int!) { createProduct(input: {sku: "COBOL", name: "COBOL manual", '
        'price: {amount: 1999, currency: "USD"}, stock: $stock}) { product { id } } }',
        {"stock": stock},
    )
    return customer["createCustomer"]["customer"]["id"], product["createProduct"]["product"]["id"]


def order_input(customer: str, product: str, key: str, method: str = "pm_card_visa", quantity: int = 1) -> Any:
    return {
        "input": {
            "customerId": customer,
            "lines": [{"productId": product, "quantity": quantity}],
            "paymentMethod": method,
            "idempotencyKey": key,
        }
    }


def intents_for(localstripe: LocalStripe, number: str) -> list[dict[str, Any]]:
    return [pi for pi in localstripe.payment_intents() if pi.get("metadata", {}).get("order_number") == number]


def upstream_calls(client: GraphQLClient) -> int:
    provider = client.app.state.services.payments
    assert isinstance(provider, StripePaymentProvider)
    stats = provider.upstream.stats
    return stats["success"] + stats["client_error"] + stats["failure"]


async def test_paid_declined_and_authentication_required_orders(
    stripe_client: GraphQLClient, localstripe: LocalStripe
) -> None:
    customer, product = await seed_shop(stripe_client)

    paid = (await stripe_client.execute(PLACE, order_input(customer, product, "paid")))["placeOrder"]
    assert paid["userErrors"] == []
    assert paid["order"]["status"] == "PAID"
    assert paid["order"]["payment"]["status"] == "SUCCEEDED"
    assert paid["order"]["payment"]["reference"].startswith("pi_")
    assert paid["order"]["emails"] == [{"status": "PENDING"}]
    (intent,) = intents_for(localstripe, paid["order"]["number"])
    assert (intent["id"], intent["amount"], intent["currency"], intent["status"]) == (
        paid["order"]["payment"]["reference"],
        1999,
        "usd",
        "succeeded",
    )

    declined = await stripe_client.execute(PLACE, order_input(customer, product, "declined", DECLINED_CARD))
    result = declined["placeOrder"]
    assert [(e["field"], e["code"]) for e in result["userErrors"]] == [("paymentMethod", "CARD_DECLINED")]
    assert result["order"]["status"] == "PAYMENT_FAILED"
    assert result["order"]["payment"]["status"] == "FAILED"

    three_ds = localstripe.create_card(AUTHENTICATION_REQUIRED_NUMBER)
    pending = (await stripe_client.execute(PLACE, order_input(customer, product, "3ds", three_ds)))["placeOrder"]
    assert [e["code"] for e in pending["userErrors"]] == ["PAYMENT_REQUIRES_ACTION"]
    assert pending["order"]["status"] == "PENDING"
    assert pending["order"]["payment"]["status"] == "REQUIRES_ACTION"


async def test_fifty_concurrent_identical_orders_charge_once(
    stripe_client: GraphQLClient, localstripe: LocalStripe
) -> None:
    customer, product = await seed_shop(stripe_client)
    variables = order_input(customer, product, "burst-of-50", quantity=2)
    results = await asyncio.gather(*(stripe_client.execute(PLACE, variables) for _ in range(50)))
    orders = {r["placeOrder"]["order"]["id"] for r in results}
    assert len(orders) == 1
    assert {r["placeOrder"]["order"]["status"] for r in results} == {"PAID"}
    assert await stripe_client.count(Order) == 1
    assert await stripe_client.count(Payment) == 1
    assert await stripe_client.count(OutboxEmail) == 1
    number = results[0]["placeOrder"]["order"]["number"]
    assert len(intents_for(localstripe, number)) == 1
    stock = await stripe_client.execute("query($id: ID!) { product(id: $id) { stock } }", {"id": product})
    assert stock["product"]["stock"] == 98


async def test_a_page_of_orders_asks_the_provider_once_per_payment_then_not_at_all(
    stripe_client: GraphQLClient,
) -> None:
    customer, product = await seed_shop(stripe_client)
    place = "mutation($input: PlaceOrderInput!) { placeOrder(input: $input) { order { status } } }"
    for index in range(6):
        await stripe_client.execute(place, order_input(customer, product, f"page-{index}"))
    await stripe_client.app.state.services.cache.aclose()  # a cold cache

    before = upstream_calls(stripe_client)
    cold = await stripe_client.execute(ORDERS)
    assert [e["node"]["payment"]["status"] for e in cold["orders"]["edges"]] == ["SUCCEEDED"] * 6
    assert upstream_calls(stripe_client) - before == 6

    before = upstream_calls(stripe_client)
    same_request_twice = "{ a: orders(first: 50) { edges { node { payment { status } } } } " + (
        "b: orders(first: 50) { edges { node { payment { status } } } } }"
    )
    await stripe_client.execute(same_request_twice)
    assert await stripe_client.execute(ORDERS) == cold
    assert upstream_calls(stripe_client) - before == 0


async def test_provider_down_keeps_the_rest_of_the_answer_and_codes_the_payment_error(
    store_url: str, tmp_path: Path, localstripe: LocalStripe
) -> None:
    async with serve_in_process(stripe_settings(store_url, tmp_path, localstripe.url)) as up:
        customer, product = await seed_shop(up)
        for index in range(3):
            await up.execute(PLACE, order_input(customer, product, f"down-{index}"))

    with closed_port() as port:
        settings = stripe_settings(
            store_url, tmp_path, f"http://127.0.0.1:{port}", PAYMENTS_BREAKER_FAILURES=2, PAYMENTS_RETRIES=0
        )
        async with serve_in_process(settings) as down:
            response = await down.post(ORDERS)
            assert response.status_code == 200
            body = response.json()
            edges = body["data"]["orders"]["edges"]
            assert [e["node"]["status"] for e in edges] == ["PAID"] * 3
            assert [e["node"]["payment"] for e in edges] == [None] * 3
            assert {e["extensions"]["code"] for e in body["errors"]} == {"PAYMENT_PROVIDER_UNAVAILABLE"}
            assert sorted(tuple(e["path"]) for e in body["errors"]) == [
                ("orders", "edges", index, "node", "payment") for index in range(3)
            ]
            assert API_KEY not in response.text

            provider = down.app.state.services.payments
            assert isinstance(provider, StripePaymentProvider)
            assert provider.upstream.breaker.state == "open"
            again = (await down.post(ORDERS)).json()
            assert {e["extensions"]["code"] for e in again["errors"]} == {"PAYMENT_PROVIDER_UNAVAILABLE"}
            assert provider.upstream.stats["short_circuit"] >= 3


async def test_a_provider_slower_than_the_timeout_is_unavailable_not_a_500(store_url: str, tmp_path: Path) -> None:
    async with ScriptedServer() as slow:
        slow.default = Reply(200, body=b"{}", delay=2.0)
        settings = stripe_settings(store_url, tmp_path, slow.url, PAYMENTS_READ_TIMEOUT=0.2, PAYMENTS_RETRIES=0)
        async with serve_in_process(settings) as client:
            customer, product = await seed_shop(client)
            result = (await client.execute(PLACE, order_input(customer, product, "slow")))["placeOrder"]
    assert [e["code"] for e in result["userErrors"]] == ["PAYMENT_PROVIDER_UNAVAILABLE"]
    assert result["order"]["status"] == "PENDING"
    assert result["order"]["payment"]["status"] == "PROCESSING"
    assert result["order"]["payment"]["reference"] is None


async def test_an_order_kept_while_the_provider_was_down_is_paid_once_on_retry(
    store_url: str, tmp_path: Path, localstripe: LocalStripe
) -> None:
    with closed_port() as port:
        down_settings = stripe_settings(store_url, tmp_path, f"http://127.0.0.1:{port}", PAYMENTS_RETRIES=0)
        async with serve_in_process(down_settings) as down:
            customer, product = await seed_shop(down, stock=5)
            first = (await down.execute(PLACE, order_input(customer, product, "retry-me", quantity=2)))["placeOrder"]
    assert [e["code"] for e in first["userErrors"]] == ["PAYMENT_PROVIDER_UNAVAILABLE"]
    assert first["order"]["status"] == "PENDING"

    async with serve_in_process(stripe_settings(store_url, tmp_path, localstripe.url)) as up:
        retried = await asyncio.gather(
            *(up.execute(PLACE, order_input(customer, product, "retry-me", quantity=2)) for _ in range(5))
        )
        assert {r["placeOrder"]["order"]["id"] for r in retried} == {first["order"]["id"]}
        assert {r["placeOrder"]["order"]["status"] for r in retried} == {"PAID"}
        assert len(intents_for(localstripe, first["order"]["number"])) == 1
        stock = await up.execute("query($id: ID!) { product(id: $id) { stock } }", {"id": product})
        assert stock["product"]["stock"] == 3


async def test_localstripe_webhook_completes_an_authenticated_payment(
    store_url: str, tmp_path: Path, localstripe: LocalStripe
) -> None:
    """localstripe signs and delivers `payment_intent.succeeded` to our real HTTP server after 3-D Secure."""
    app_settings = stripe_settings(store_url, tmp_path, localstripe.url)
    async with serve_in_process(app_settings) as client, live_server(client.app) as url:
        hook = f"hook-{id(client)}"
        with localstripe.client() as stripe:
            stripe.post(
                f"/_config/webhooks/{hook}",
                data={
                    "url": f"{url}/webhooks/stripe",
                    "secret": WEBHOOK_SECRET,
                    "events[]": "payment_intent.succeeded",
                },
            ).raise_for_status()
        try:
            customer, product = await seed_shop(client)
            card = localstripe.create_card(AUTHENTICATION_REQUIRED_NUMBER)
            placed = (await client.execute(PLACE, order_input(customer, product, "webhook-3ds", card)))["placeOrder"]
            assert placed["order"]["status"] == "PENDING"
            reference = placed["order"]["payment"]["reference"]

            async with httpx.AsyncClient(base_url=localstripe.url, trust_env=False) as stripe_async:
                intent = (
                    await stripe_async.get(
                        f"/v1/payment_intents/{reference}", headers={"Authorization": f"Bearer {API_KEY}"}
                    )
                ).json()
                authenticated = await stripe_async.post(
                    f"/v1/payment_intents/{reference}/_authenticate",
                    data={"client_secret": intent["client_secret"], "success": "true", "key": "pk_test_gateway"},
                )
                assert authenticated.status_code == 200, authenticated.text

            query = "query($id: ID!) { node(id: $id) { ... on Order { status emails { status } } } }"
            for _ in range(100):  # localstripe waits 1 s before delivering
                order = (await client.execute(query, {"id": placed["order"]["id"]}))["node"]
                if order["status"] == "PAID":
                    break
                await asyncio.sleep(0.1)
            assert order == {"status": "PAID", "emails": [{"status": "PENDING"}]}
            assert await client.count(WebhookEvent) >= 1  # other tests' intents may be delivered here too
        finally:
            with localstripe.client() as stripe:  # stop deliveries to this (soon closed) server
                stripe.post(
                    f"/_config/webhooks/{hook}", data={"url": "http://127.0.0.1:9/", "secret": "x", "events[]": "none"}
                )
