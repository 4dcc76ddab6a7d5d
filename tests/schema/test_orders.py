"""placeOrder, refundOrder and cancelOrder through GraphQL with the embedded `local` provider, on both databases."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import func, select

from integrations.store.models import IdempotencyRecord, LocalPaymentIntent, Order, OutboxEmail, Payment
from tests.conftest import GraphQLClient

PLACE = """
mutation($input: PlaceOrderInput!) {
  placeOrder(input: $input) {
    order { id number status total { amount currency }
      lines { quantity unitPrice { amount } product { id stock } }
      payment { status amount { amount } refunded { amount } reference failureMessage }
      emails { to subject status } }
    userErrors { field message code }
  }
}"""
REFUND = """
mutation($input: RefundOrderInput!) {
  refundOrder(input: $input) {
    order { status payment { status refunded { amount } } } userErrors { field code message }
  }
}"""
CANCEL = """
mutation($input: CancelOrderInput!) {
  cancelOrder(input: $input) {
    order { status payment { status refunded { amount } } lines { product { stock } } } userErrors { field code }
  }
}"""
STOCK = "query($id: ID!) { product(id: $id) { stock } }"


@dataclass
class Shop:
    client: GraphQLClient
    customer: str
    apple: str  # 250 USD, stock 10
    pear: str  # 120 USD, stock 3
    yen_tea: str  # 500 JPY, stock 5

    async def place(self, lines: list[tuple[str, int]], key: str, method: str = "pm_card_visa") -> dict[str, Any]:
        data = await self.client.execute(
            PLACE,
            {
                "input": {
                    "customerId": self.customer,
                    "lines": [{"productId": product, "quantity": quantity} for product, quantity in lines],
                    "paymentMethod": method,
                    "idempotencyKey": key,
                }
            },
        )
        result: dict[str, Any] = data["placeOrder"]
        return result

    async def stock(self, product: str) -> int:
        return int((await self.client.execute(STOCK, {"id": product}))["product"]["stock"])

    async def count(self, model: type[Any]) -> int:
        return await self.client.count(model)


async def _create(client: GraphQLClient, mutation: str, value: dict[str, Any]) -> str:
    data = await client.execute(mutation, {"input": value})
    (payload,) = data.values()
    assert payload["userErrors"] == [], payload
    (entity,) = (v for k, v in payload.items() if k != "userErrors")
    return str(entity["id"])


@pytest.fixture
async def shop(client: GraphQLClient) -> Shop:
    customer = (
        "mutation($input: CreateCustomerInput!) "
        "{ createCustomer(input: $input) { customer { id } userErrors { code } } }"
    )
    product = (
        "mutation($input: CreateProductInput!) { createProduct(input: $input) { product { id } userErrors { code } } }"
    )
    return Shop(
        client=client,
        customer=await _create(client, customer, {"email": "ada@example.com", "name": "Ada Lovelace"}),
        apple=await _create(
            client, product, {"sku": "APPLE", "name": "Apple", "price": {"amount": 250, "currency": "USD"}, "stock": 10}
        ),
        pear=await _create(
            client, product, {"sku": "PEAR", "name": "Pear", "price": {"amount": 120, "currency": "USD"}, "stock": 3}
        ),
        yen_tea=await _create(
            client, product, {"sku": "TEA", "name": "Tea", "price": {"amount": 500, "currency": "JPY"}, "stock": 5}
        ),
    )


async def test_a_paid_order_reserves_stock_records_the_payment_and_queues_the_confirmation(shop: Shop) -> None:
    result = await shop.place([(shop.apple, 2), (shop.pear, 1)], "order-1")
    assert result["userErrors"] == []
    order = result["order"]
    assert order["status"] == "PAID"
    assert order["number"].startswith("ORD-")
    assert order["total"] == {"amount": 2 * 250 + 120, "currency": "USD"}
    assert [(line["quantity"], line["unitPrice"]["amount"]) for line in order["lines"]] == [(2, 250), (1, 120)]
    assert order["payment"]["status"] == "SUCCEEDED"
    assert order["payment"]["amount"] == {"amount": 620}
    assert order["payment"]["reference"].startswith("pi_local_")
    assert order["emails"] == [
        {"to": "ada@example.com", "subject": f"Gateway Shop: your order {order['number']}", "status": "PENDING"}
    ]
    assert await shop.stock(shop.apple) == 8
    assert await shop.stock(shop.pear) == 2


async def test_a_declined_card_fails_the_order_releases_stock_and_sends_no_confirmation(shop: Shop) -> None:
    result = await shop.place([(shop.apple, 4)], "declined", method="pm_card_chargeDeclined")
    assert result["userErrors"] == [
        {"field": "paymentMethod", "message": "Your card was declined.", "code": "CARD_DECLINED"}
    ]
    order = result["order"]
    assert order["status"] == "PAYMENT_FAILED"
    assert order["payment"]["status"] == "FAILED"
    assert order["payment"]["failureMessage"] == "Your card was declined."
    assert order["emails"] == []
    assert await shop.stock(shop.apple) == 10


async def test_authentication_required_keeps_the_order_pending_until_cancelled(shop: Shop) -> None:
    result = await shop.place([(shop.pear, 2)], "3ds", method="pm_card_authenticationRequired")
    assert [e["code"] for e in result["userErrors"]] == ["PAYMENT_REQUIRES_ACTION"]
    assert result["order"]["status"] == "PENDING"
    assert result["order"]["payment"]["status"] == "REQUIRES_ACTION"
    assert await shop.stock(shop.pear) == 1  # still reserved

    cancelled = (await shop.client.execute(CANCEL, {"input": {"orderId": result["order"]["id"]}}))["cancelOrder"]
    assert cancelled["userErrors"] == []
    assert cancelled["order"]["status"] == "CANCELLED"
    assert cancelled["order"]["payment"]["status"] == "CANCELLED"
    assert await shop.stock(shop.pear) == 3


async def test_an_unknown_payment_method_fails_the_order_with_a_field_error(shop: Shop) -> None:
    result = await shop.place([(shop.apple, 1)], "bad-pm", method="pm_card_does_not_exist")
    assert [(e["field"], e["code"]) for e in result["userErrors"]] == [("paymentMethod", "INVALID")]
    assert result["order"]["status"] == "PAYMENT_FAILED"
    assert result["order"]["payment"]["reference"] is None
    assert await shop.stock(shop.apple) == 10


async def test_the_same_key_and_input_returns_the_same_order_without_a_second_charge(shop: Shop) -> None:
    first = await shop.place([(shop.apple, 1)], "same")
    again = await shop.place([(shop.apple, 1)], "same")
    assert again == first
    assert await shop.count(Order) == 1
    assert await shop.count(LocalPaymentIntent) == 1
    assert await shop.count(OutboxEmail) == 1
    assert await shop.stock(shop.apple) == 9


async def test_a_declined_order_replays_with_the_same_error(shop: Shop) -> None:
    first = await shop.place([(shop.apple, 1)], "declined-twice", method="pm_card_chargeDeclined")
    again = await shop.place([(shop.apple, 1)], "declined-twice", method="pm_card_chargeDeclined")
    assert again == first
    assert await shop.count(LocalPaymentIntent) == 1


async def test_a_used_key_with_different_input_is_refused_and_changes_nothing(shop: Shop) -> None:
    await shop.place([(shop.apple, 1)], "reused")
    result = await shop.place([(shop.apple, 2)], "reused")
    assert result["order"] is None
    assert [(e["field"], e["code"]) for e in result["userErrors"]] == [("idempotencyKey", "IDEMPOTENCY_KEY_REUSED")]
    assert await shop.count(Order) == 1
    assert await shop.stock(shop.apple) == 9


async def test_line_order_does_not_make_a_different_request(shop: Shop) -> None:
    first = await shop.place([(shop.apple, 1), (shop.pear, 1)], "lines")
    again = await shop.place([(shop.pear, 1), (shop.apple, 1)], "lines")
    assert again["order"]["id"] == first["order"]["id"]


async def test_fifty_concurrent_identical_requests_make_one_order_and_one_payment(shop: Shop) -> None:
    results = await asyncio.gather(*(shop.place([(shop.apple, 3)], "burst") for _ in range(50)))
    assert {r["order"]["id"] for r in results} == {results[0]["order"]["id"]}
    assert all(r["order"]["status"] == "PAID" and r["userErrors"] == [] for r in results)
    assert await shop.count(Order) == 1
    assert await shop.count(IdempotencyRecord) == 1
    assert await shop.count(Payment) == 1
    assert await shop.count(LocalPaymentIntent) == 1
    assert await shop.count(OutboxEmail) == 1
    assert await shop.stock(shop.apple) == 7


@pytest.mark.parametrize(
    ("lines", "extra", "errors"),
    [
        ([("apple", 0)], {}, [("lines.0.quantity", "OUT_OF_RANGE")]),
        ([("apple", 1001)], {}, [("lines.0.quantity", "OUT_OF_RANGE")]),
        ([], {}, [("lines", "REQUIRED")]),
        ([("apple", 1), ("apple", 2)], {}, [("lines.1.productId", "DUPLICATE")]),
        ([("pear", 4)], {}, [("lines.0.quantity", "INSUFFICIENT_STOCK")]),
        ([("apple", 1), ("yen_tea", 1)], {}, [("lines", "CURRENCY_MISMATCH")]),
        ([("apple", 1)], {"idempotencyKey": "  "}, [("idempotencyKey", "REQUIRED")]),
        ([("apple", 1)], {"idempotencyKey": "k" * 256}, [("idempotencyKey", "TOO_LONG")]),
        ([("apple", 1)], {"paymentMethod": ""}, [("paymentMethod", "REQUIRED")]),
        ([("apple", 1)], {"customerId": "bm9wZQ"}, [("customerId", "INVALID_ID")]),
        ([("apple", 1)], {"customerId": "Q3VzdG9tZXI6OTk5"}, [("customerId", "NOT_FOUND")]),
        ([("missing", 1)], {}, [("lines.0.productId", "NOT_FOUND")]),
        ([("customer", 1)], {}, [("lines.0.productId", "INVALID_ID")]),
    ],
)
async def test_invalid_orders_are_refused_with_field_errors_and_change_nothing(
    shop: Shop, lines: list[tuple[str, int]], extra: dict[str, str], errors: list[tuple[str, str]]
) -> None:
    ids = {
        "apple": shop.apple,
        "pear": shop.pear,
        "yen_tea": shop.yen_tea,
        "missing": "UHJvZHVjdDo5OTk",  # Product:999
        "customer": shop.customer,
    }
    value = {
        "customerId": shop.customer,
        "lines": [{"productId": ids[name], "quantity": quantity} for name, quantity in lines],
        "paymentMethod": "pm_card_visa",
        "idempotencyKey": "invalid",
        **extra,
    }
    result = (await shop.client.execute(PLACE, {"input": value}))["placeOrder"]
    assert result["order"] is None
    assert [(e["field"], e["code"]) for e in result["userErrors"]] == errors
    assert await shop.count(Order) == 0
    assert await shop.stock(shop.apple) == 10


async def test_more_than_a_hundred_lines_are_refused(shop: Shop) -> None:
    value = {
        "customerId": shop.customer,
        "lines": [{"productId": shop.apple, "quantity": 1}] * 101,
        "paymentMethod": "pm_card_visa",
        "idempotencyKey": "many",
    }
    result = (await shop.client.execute(PLACE, {"input": value}))["placeOrder"]
    assert ("lines", "OUT_OF_RANGE") in [(e["field"], e["code"]) for e in result["userErrors"]]


async def test_partial_then_full_refund_never_more_than_captured(shop: Shop) -> None:
    order = (await shop.place([(shop.apple, 4)], "refunds"))["order"]  # 1000
    refund = (await shop.client.execute(REFUND, {"input": {"orderId": order["id"], "amount": 300}}))["refundOrder"]
    assert refund["userErrors"] == []
    assert refund["order"]["status"] == "PARTIALLY_REFUNDED"
    assert refund["order"]["payment"] == {"status": "PARTIALLY_REFUNDED", "refunded": {"amount": 300}}

    too_much = (await shop.client.execute(REFUND, {"input": {"orderId": order["id"], "amount": 701}}))["refundOrder"]
    assert [(e["field"], e["code"]) for e in too_much["userErrors"]] == [("amount", "REFUND_EXCEEDS_CAPTURED")]

    rest = (await shop.client.execute(REFUND, {"input": {"orderId": order["id"]}}))["refundOrder"]
    assert rest["order"]["status"] == "REFUNDED"
    assert rest["order"]["payment"] == {"status": "REFUNDED", "refunded": {"amount": 1000}}

    nothing_left = (await shop.client.execute(REFUND, {"input": {"orderId": order["id"], "amount": 1}}))["refundOrder"]
    assert [e["code"] for e in nothing_left["userErrors"]] == ["INVALID_STATE"]


async def test_concurrent_refunds_never_exceed_the_captured_amount(shop: Shop) -> None:
    order = (await shop.place([(shop.apple, 4)], "race"))["order"]  # 1000
    results = await asyncio.gather(
        *(shop.client.execute(REFUND, {"input": {"orderId": order["id"], "amount": 300}}) for _ in range(6))
    )
    succeeded = [r for r in results if not r["refundOrder"]["userErrors"]]
    assert len(succeeded) == 3
    async with shop.client.app.state.engine.connect() as connection:
        refunded = (await connection.execute(select(func.sum(Payment.refunded)))).scalar_one()
        ledger = (await connection.execute(select(func.sum(LocalPaymentIntent.amount_refunded)))).scalar_one()
    assert refunded == ledger == 900


async def test_refunds_are_refused_for_unpaid_orders_and_bad_amounts(shop: Shop) -> None:
    failed = (await shop.place([(shop.apple, 1)], "failed", method="pm_card_chargeDeclined"))["order"]
    refund = (await shop.client.execute(REFUND, {"input": {"orderId": failed["id"]}}))["refundOrder"]
    assert [e["code"] for e in refund["userErrors"]] == ["INVALID_STATE"]
    paid = (await shop.place([(shop.apple, 1)], "paid"))["order"]
    for amount, code in [(0, "OUT_OF_RANGE"), (-5, "OUT_OF_RANGE")]:
        result = await shop.client.execute(REFUND, {"input": {"orderId": paid["id"], "amount": amount}})
        assert [e["code"] for e in result["refundOrder"]["userErrors"]] == [code]
    missing = (await shop.client.execute(REFUND, {"input": {"orderId": "T3JkZXI6OTk5"}}))["refundOrder"]
    assert [(e["field"], e["code"]) for e in missing["userErrors"]] == [("orderId", "NOT_FOUND")]


async def test_cancelling_a_paid_order_refunds_it_and_restocks_once(shop: Shop) -> None:
    order = (await shop.place([(shop.pear, 2)], "cancel-paid"))["order"]
    assert await shop.stock(shop.pear) == 1
    first = (await shop.client.execute(CANCEL, {"input": {"orderId": order["id"]}}))["cancelOrder"]
    assert first["userErrors"] == []
    assert first["order"]["status"] == "CANCELLED"
    assert first["order"]["payment"] == {"status": "REFUNDED", "refunded": {"amount": 240}}
    again = (await shop.client.execute(CANCEL, {"input": {"orderId": order["id"]}}))["cancelOrder"]
    assert again["order"]["status"] == "CANCELLED"
    assert await shop.stock(shop.pear) == 3


async def test_cancelling_a_failed_order_does_not_restock_twice(shop: Shop) -> None:
    order = (await shop.place([(shop.pear, 2)], "cancel-failed", method="pm_card_chargeDeclined"))["order"]
    assert await shop.stock(shop.pear) == 3
    result = (await shop.client.execute(CANCEL, {"input": {"orderId": order["id"]}}))["cancelOrder"]
    assert result["order"]["status"] == "CANCELLED"
    assert await shop.stock(shop.pear) == 3


async def test_order_payment_and_emails_are_batched_and_provider_reads_cached(shop: Shop) -> None:
    place = "mutation($input: PlaceOrderInput!) { placeOrder(input: $input) { order { status } } }"
    for index in range(5):
        value = {
            "customerId": shop.customer,
            "lines": [{"productId": shop.apple, "quantity": 1}],
            "paymentMethod": "pm_card_visa",
            "idempotencyKey": f"batch-{index}",
        }
        assert (await shop.client.execute(place, {"input": value}))["placeOrder"]["order"]["status"] == "PAID"
    query = "{ orders(first: 50) { edges { node { payment { status } emails { status } } } } }"
    shop.client.sql.reset()
    data = await shop.client.execute(query)
    assert [edge["node"]["payment"]["status"] for edge in data["orders"]["edges"]] == ["SUCCEEDED"] * 5
    ledger = [s for s in shop.client.sql.statements if "local_payment_intent" in s]
    # cold: the page, its payment rows, its emails; and the provider (the local ledger) once per payment
    assert (shop.client.sql.count - len(ledger), len(ledger)) == (3, 5), shop.client.sql.statements
    shop.client.sql.reset()
    again = await shop.client.post(query, headers={"Cache-Control": "no-cache"})  # executed, not a cached response
    assert again.json() == {"data": data}
    # warm: the provider is not asked again while its answers are cached
    assert shop.client.sql.count == 3, shop.client.sql.statements


async def test_an_order_of_free_products_is_paid_without_asking_the_provider(shop: Shop) -> None:
    product = (
        "mutation($input: CreateProductInput!) { createProduct(input: $input) { product { id } userErrors { code } } }"
    )
    sample = await _create(
        shop.client, product, {"sku": "FREE", "name": "Sample", "price": {"amount": 0, "currency": "USD"}, "stock": 2}
    )
    result = await shop.place([(sample, 1)], "free")
    assert result["userErrors"] == []
    assert result["order"]["status"] == "PAID"
    assert result["order"]["payment"]["status"] == "SUCCEEDED"
    assert result["order"]["payment"]["reference"] is None
    assert await shop.count(LocalPaymentIntent) == 0
    cancelled = (await shop.client.execute(CANCEL, {"input": {"orderId": result["order"]["id"]}}))["cancelOrder"]
    assert cancelled["userErrors"] == []
    assert cancelled["order"]["status"] == "CANCELLED"
    assert await shop.stock(sample) == 2
