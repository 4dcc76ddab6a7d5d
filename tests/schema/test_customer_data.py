"""exportCustomerData and eraseCustomer through the real app, on both databases: the export holds exactly the
customer's data, erasure leaves no trace of the person anywhere in the store while the books stay identical,
drops cached answers that held the data, is idempotent, authorized and audited."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert, select, update
from sqlmodel import col

from integrations.store.models import (
    AuditEvent,
    AuditOutcome,
    Customer,
    EmailStatus,
    OutboxEmail,
    metadata,
)
from integrations.store.types import utcnow
from resolvers.customer.data import ERASED_NAME, ERASED_TEXT, UNSENT
from schema.ids import decode_id, encode_id
from tests.conftest import GraphQLClient, app_settings_for, serve_in_process, token_for
from tests.schema.test_audit_log import clear_audit_log

ADA = {"email": "ada.lovelace@example.com", "name": "Ada Lovelace"}
BOB = {"email": "robert.tables@example.com", "name": "Robert Tables"}
CREATE_CUSTOMER = "mutation($i: CreateCustomerInput!) { createCustomer(input: $i) { customer { id } } }"
CREATE_PRODUCT = "mutation($i: CreateProductInput!) { createProduct(input: $i) { product { id } } }"
PLACE = """mutation($i: PlaceOrderInput!) {
  placeOrder(input: $i) { order { id number } userErrors { code } }
}"""
REFUND = "mutation($i: RefundOrderInput!) { refundOrder(input: $i) { userErrors { code } } }"
CANCEL = "mutation($i: CancelOrderInput!) { cancelOrder(input: $i) { userErrors { code } } }"
EXPORT = """mutation Export($id: ID!) {
  exportCustomerData(customerId: $id) { data userErrors { field message code } }
}"""
ERASE = """mutation Erase($id: ID!) {
  eraseCustomer(customerId: $id) { customer { id name email } alreadyErased userErrors { field message code } }
}"""
CUSTOMER = "query Customer($id: ID!) { customer(id: $id) { id name email } }"
ORDER = "query Order($id: ID!) { order(id: $id) { number total { amount } customer { name email } emails { to } } }"
FINANCIAL = ("order", "order_line", "payment", "local_payment_intent", "local_refund", "idempotency_record")


@dataclass
class Shop:
    client: GraphQLClient
    ada: str
    bob: str
    ada_orders: list[str]
    ada_numbers: list[str]
    bob_order: str
    bob_number: str

    def as_(self, *, roles: list[str], scopes: list[str] | None = None, customer: str | None = None) -> dict[str, str]:
        claims: dict[str, Any] = {"roles": roles, "scopes": scopes or []}
        if customer is not None:
            claims["customer"] = customer
        subject = f"{roles}-{scopes}-{customer}"
        return {"Authorization": f"Bearer {token_for(self.client.settings, subject=subject, **claims)}"}

    async def run(self, query: str, variables: dict[str, Any], headers: dict[str, str] | None = None) -> Any:
        response = await self.client.post(query, variables, headers=headers)
        assert response.status_code == 200, response.text
        return response.json()

    async def export(self, customer: str, headers: dict[str, str] | None = None) -> Any:
        body = await self.run(EXPORT, {"id": customer}, headers)
        assert "errors" not in body, body
        payload = body["data"]["exportCustomerData"]
        assert payload["userErrors"] == []
        return payload["data"]

    async def erase(self, customer: str, headers: dict[str, str] | None = None) -> Any:
        body = await self.run(ERASE, {"id": customer}, headers)
        assert "errors" not in body, body
        return body["data"]["eraseCustomer"]


async def table_rows(client: GraphQLClient, *names: str) -> dict[str, list[dict[str, Any]]]:
    """Every row of the named tables (all tables when none are named), as column -> value, in key order."""
    tables = [t for t in metadata.sorted_tables if not names or t.name in names]
    found: dict[str, list[dict[str, Any]]] = {}
    async with client.app.state.engine.connect() as connection:
        for table in tables:
            order = list(table.primary_key.columns)
            result = await connection.execute(select(table).order_by(*order))
            found[table.name] = [dict(row._mapping) for row in result]
    return found


async def place(client: GraphQLClient, customer: str, product: str, key: str, method: str = "pm_card_visa") -> Any:
    line = {"productId": product, "quantity": 2}
    value = {"customerId": customer, "lines": [line], "paymentMethod": method, "idempotencyKey": key}
    return (await client.execute(PLACE, {"i": value}))["placeOrder"]["order"]


@pytest.fixture
async def client(store_url: str, tmp_path: Path) -> AsyncIterator[GraphQLClient]:
    await clear_audit_log(store_url)
    async with serve_in_process(app_settings_for(store_url, tmp_path, GATEWAY_ANONYMOUS_SCOPES="")) as client:
        yield client


@pytest.fixture
async def shop(client: GraphQLClient) -> Shop:
    """Ada: a partially refunded order, a cancelled one and a declined one, her emails in every state (one
    without an order, one whose delivery error quotes her address). Bob: one paid order."""
    ada, bob = [
        (await client.execute(CREATE_CUSTOMER, {"i": who}))["createCustomer"]["customer"]["id"] for who in (ADA, BOB)
    ]
    price = {"amount": 450, "currency": "EUR"}
    lamp_input = {"sku": "LAMP", "name": "Brass lamp", "price": price, "stock": 100}
    lamp = (await client.execute(CREATE_PRODUCT, {"i": lamp_input}))["createProduct"]["product"]["id"]
    orders = [
        await place(client, ada, lamp, "a1"),
        await place(client, ada, lamp, "a2"),
        await place(client, ada, lamp, "a3", "pm_card_chargeDeclined"),
    ]
    bob_order = await place(client, bob, lamp, "b1")
    await client.execute(REFUND, {"i": {"orderId": orders[0]["id"], "amount": 300}})
    await client.execute(CANCEL, {"i": {"orderId": orders[1]["id"]}})

    async with client.app.state.engine.begin() as connection:
        await connection.execute(
            update(OutboxEmail)
            .where(col(OutboxEmail.order_id) == decode_id(orders[0]["id"])[1])
            .values(status=EmailStatus.SENT.value, sent_at=utcnow(), attempts=1)
        )
        await connection.execute(
            update(OutboxEmail)
            .where(col(OutboxEmail.order_id) == decode_id(orders[1]["id"])[1])
            .values(attempts=1, last_error=f"550 5.1.1 <{ADA['email']}>: mailbox full")
        )
        await connection.execute(
            insert(OutboxEmail).values(
                order_id=None,
                kind="newsletter",
                message_id="<newsletter-ada@gateway.local>",
                recipient=ADA["email"],
                subject="News from the shop",
                text_body=f"Dear {ADA['name']}, ...",
                html_body=f"<p>Dear {ADA['name']}</p>",
                status=EmailStatus.PENDING.value,
                attempts=0,
                next_attempt_at=utcnow(),
                created_at=utcnow(),
            )
        )
    return Shop(
        client,
        ada,
        bob,
        [o["id"] for o in orders],
        [o["number"] for o in orders],
        bob_order["id"],
        bob_order["number"],
    )


# ---- export -----------------------------------------------------------------------------------------------------


async def test_the_export_holds_all_of_the_customers_data_and_nobody_elses(shop: Shop) -> None:
    data = await shop.export(shop.ada)

    assert data["format"] == "customer-data/1"
    assert data["customer"] | {"createdAt": None} == {"id": shop.ada, **ADA, "createdAt": None}
    assert [o["id"] for o in data["orders"]] == shop.ada_orders
    assert [o["number"] for o in data["orders"]] == shop.ada_numbers
    assert [o["status"] for o in data["orders"]] == ["PARTIALLY_REFUNDED", "CANCELLED", "PAYMENT_FAILED"]
    for order in data["orders"]:
        assert order["total"] == 900
        assert order["currency"] == "EUR"
        (line,) = order["lines"]
        assert line | {"product": None} == {"product": None, "quantity": 2, "unitPrice": 450, "subtotal": 900}
        assert line["product"]["sku"] == "LAMP"
    payments = [o["payment"] for o in data["orders"]]
    assert [(p["status"], p["amount"], p["refunded"]) for p in payments] == [
        ("PARTIALLY_REFUNDED", 900, 300),
        ("REFUNDED", 900, 900),
        ("FAILED", 900, 0),
    ]
    assert payments[2]["failureCode"] == "card_declined"

    emails = data["emails"]
    assert len(emails) == 3  # two confirmations (the declined order sent none) and the newsletter
    assert {e["to"] for e in emails} == {ADA["email"]}
    assert [e["status"] for e in emails] == ["SENT", "PENDING", "PENDING"]
    assert emails[0]["sentAt"] is not None
    assert emails[2] | {"id": None, "createdAt": None} == {
        "id": None,
        "order": None,
        "to": ADA["email"],
        "subject": "News from the shop",
        "status": "PENDING",
        "attempts": 0,
        "createdAt": None,
        "sentAt": None,
    }

    text = json.dumps(data)
    for foreign in (shop.bob, shop.bob_order, shop.bob_number, BOB["email"], BOB["name"]):
        assert foreign not in text
    for card_data in ("pm_card", "pi_", "reference", "paymentMethod", "idempotency", "Body"):
        assert card_data not in text


async def test_who_may_export(shop: Shop) -> None:
    ada = shop.as_(roles=["customer"], customer=shop.ada)
    assert (await shop.export(shop.ada, ada))["customer"]["email"] == ADA["email"]  # its own
    privacy = shop.as_(roles=["staff"], scopes=["customers:export"])
    assert (await shop.export(shop.bob, privacy))["customer"]["email"] == BOB["email"]

    refused = [
        (shop.bob, ada),  # another customer's
        (shop.ada, shop.as_(roles=["staff"], scopes=["customers:read", "orders:read", "customers:erase"])),
        (shop.ada, {"Authorization": ""}),
    ]
    for customer, headers in refused:
        body = await shop.run(EXPORT, {"id": customer}, headers)
        assert body["data"] is None
        assert [e["extensions"]["code"] for e in body["errors"]] == ["FORBIDDEN"]


async def test_export_input_problems_are_user_errors(shop: Shop) -> None:
    cases = [
        (encode_id("Customer", 999_999), "NOT_FOUND"),
        (shop.ada_orders[0], "INVALID_ID"),
        ("garbage", "INVALID_ID"),
    ]
    for customer, code in cases:
        payload = (await shop.run(EXPORT, {"id": customer}))["data"]["exportCustomerData"]
        assert payload["data"] is None
        assert [(e["field"], e["code"]) for e in payload["userErrors"]] == [("customerId", code)]


# ---- erase ------------------------------------------------------------------------------------------------------


async def test_erasure_leaves_no_trace_of_the_person_and_the_books_unchanged(shop: Shop) -> None:
    books = await table_rows(shop.client, *FINANCIAL)
    bob_before = await shop.export(shop.bob)

    payload = await shop.erase(shop.ada)

    ada_pk = decode_id(shop.ada)[1]
    placeholder = f"erased-{ada_pk}@invalid"
    assert payload == {
        "customer": {"id": shop.ada, "name": ERASED_NAME, "email": placeholder},
        "alreadyErased": False,
        "userErrors": [],
    }
    everything = await table_rows(shop.client)
    for table, rows in everything.items():
        for row in rows:
            text = " ".join(str(value) for value in row.values()).lower()
            for trace in (ADA["email"], ADA["name"].lower(), "lovelace"):
                assert trace not in text, (table, row)
    assert await table_rows(shop.client, *FINANCIAL) == books  # orders, lines, payments, refunds, untouched

    ada_emails = [e for e in everything["email_outbox"] if e["recipient"] == placeholder]
    assert len(ada_emails) == 3
    assert all(e["text_body"] == e["html_body"] == ERASED_TEXT for e in ada_emails)
    assert [(e["status"], e["last_error"]) for e in ada_emails] == [
        ("SENT", None),  # sent stays sent
        ("FAILED", UNSENT),  # pending ones are never sent to the placeholder
        ("FAILED", UNSENT),
    ]
    bob_emails = [e for e in everything["email_outbox"] if e["recipient"] == BOB["email"]]
    assert len(bob_emails) == 1
    assert BOB["name"] in bob_emails[0]["text_body"]
    assert await shop.export(shop.bob) == bob_before

    exported = await shop.export(shop.ada)
    assert exported["customer"] | {"createdAt": None} == {
        "id": shop.ada,
        "name": ERASED_NAME,
        "email": placeholder,
        "createdAt": None,
    }
    assert [(o["number"], o["total"], o["payment"]["refunded"]) for o in exported["orders"]] == [
        (shop.ada_numbers[0], 900, 300),
        (shop.ada_numbers[1], 900, 900),
        (shop.ada_numbers[2], 900, 0),
    ]


async def test_erasing_twice_changes_nothing_more(shop: Shop) -> None:
    first = await shop.erase(shop.ada)
    after_first = await table_rows(shop.client)
    second = await shop.erase(shop.ada)

    assert second == first | {"alreadyErased": True}
    after_second = await table_rows(shop.client)
    assert {k: v for k, v in after_second.items() if k != "audit_event"} == {
        k: v for k, v in after_first.items() if k != "audit_event"
    }
    audit = [r for r in after_second["audit_event"] if r["mutation"] == "eraseCustomer"]
    assert [(r["outcome"], r["targets"]) for r in audit] == [("OK", shop.ada), ("OK", shop.ada)]


UPDATE_CUSTOMER = """mutation($i: UpdateCustomerInput!) {
  updateCustomer(input: $i) { customer { name email } userErrors { field message code } }
}"""


@pytest.mark.parametrize("change", [{"email": "ada.again@example.com"}, {"name": "Ada Lovelace"}, {}])
async def test_an_erased_customer_cannot_be_given_personal_data_again(shop: Shop, change: dict[str, str]) -> None:
    await shop.erase(shop.ada)
    before = await table_rows(shop.client, "customer")

    body = await shop.run(UPDATE_CUSTOMER, {"i": {"id": shop.ada, **change}})

    assert body["data"]["updateCustomer"]["customer"] is None
    assert [(e["field"], e["code"]) for e in body["data"]["updateCustomer"]["userErrors"]] == [("id", "INVALID_STATE")]
    assert await table_rows(shop.client, "customer") == before


async def test_erasure_drops_cached_answers_that_held_the_data(shop: Shop) -> None:
    async def ask(query: str, variables: dict[str, Any]) -> tuple[str, Any]:
        response = await shop.client.post(query, variables)
        body = response.json()
        assert "errors" not in body, body
        return response.headers["x-cache"], body["data"]

    cached = [(CUSTOMER, {"id": shop.ada}), (ORDER, {"id": shop.ada_orders[0]}), (CUSTOMER, {"id": shop.bob})]
    for query, variables in cached:
        await ask(query, variables)
        state, _ = await ask(query, variables)
        assert state == "HIT"

    await shop.erase(shop.ada)

    placeholder = f"erased-{decode_id(shop.ada)[1]}@invalid"
    state, data = await ask(CUSTOMER, {"id": shop.ada})
    assert (state, data["customer"]["name"], data["customer"]["email"]) == ("MISS", ERASED_NAME, placeholder)
    state, data = await ask(ORDER, {"id": shop.ada_orders[0]})
    assert state == "MISS"
    assert data["order"]["customer"] == {"name": ERASED_NAME, "email": placeholder}
    assert data["order"]["emails"] == [{"to": placeholder}]
    assert data["order"]["total"] == {"amount": 900}
    state, data = await ask(CUSTOMER, {"id": shop.bob})
    assert (state, data["customer"]["email"]) == ("HIT", BOB["email"])  # nobody else's entries are dropped


async def test_an_erasure_through_one_instance_reaches_the_cache_every_instance_shares(
    shop: Shop, redis_url: str, tmp_path: Path
) -> None:
    prefix = f"gw-test-{uuid.uuid4().hex[:12]}:"
    settings = app_settings_for(
        shop.client.settings.database_url, tmp_path, REDIS_URL=redis_url, GATEWAY_CACHE_PREFIX=prefix
    )
    async with serve_in_process(settings) as one, serve_in_process(settings) as two:
        for _ in range(2):
            response = await one.post(ORDER, {"id": shop.ada_orders[0]})
        assert response.headers["x-cache"] == "HIT"
        assert response.json()["data"]["order"]["customer"]["name"] == ADA["name"]

        erased = await two.execute(ERASE, {"id": shop.ada})
        assert erased["eraseCustomer"]["userErrors"] == []

        response = await one.post(ORDER, {"id": shop.ada_orders[0]})
        assert response.headers["x-cache"] == "MISS"
        assert response.json()["data"]["order"]["customer"]["name"] == ERASED_NAME


async def test_a_placeholder_address_taken_around_the_api_is_a_user_error(shop: Shop) -> None:
    taken = f"erased-{decode_id(shop.ada)[1]}@invalid"
    async with shop.client.app.state.engine.begin() as connection:
        await connection.execute(update(Customer).where(col(Customer.email) == BOB["email"]).values(email=taken))
    payload = await shop.erase(shop.ada)
    assert payload["customer"] is None
    assert [(e["field"], e["code"]) for e in payload["userErrors"]] == [("email", "DUPLICATE")]
    assert (await shop.export(shop.ada))["customer"]["name"] == ADA["name"]  # nothing changed


async def test_who_may_erase_and_what_is_audited(shop: Shop) -> None:
    refused = [
        shop.as_(roles=["customer"], customer=shop.ada),  # not even itself: erasure is a staff decision
        shop.as_(roles=["staff"], scopes=["customers:write", "customers:read", "customers:export"]),
        {"Authorization": ""},
    ]
    for headers in refused:
        body = await shop.run(ERASE, {"id": shop.ada}, headers)
        assert body["data"] is None
        assert [e["extensions"]["code"] for e in body["errors"]] == ["FORBIDDEN"]
    async with shop.client.app.state.engine.connect() as connection:
        name = (await connection.execute(select(col(Customer.name)).where(col(Customer.email) == ADA["email"]))).one()
    assert name == (ADA["name"],)

    privacy = shop.as_(roles=["staff"], scopes=["customers:erase"])  # no customers:read: no email in the answer
    erase = "mutation($id: ID!) { eraseCustomer(customerId: $id) { customer { name } userErrors { code } } }"
    body = await shop.run(erase, {"id": shop.ada}, privacy)
    assert body == {"data": {"eraseCustomer": {"customer": {"name": ERASED_NAME}, "userErrors": []}}}

    for customer, code in ((encode_id("Customer", 999_999), "NOT_FOUND"), (shop.bob_order, "INVALID_ID")):
        payload = (await shop.run(ERASE, {"id": customer}))["data"]["eraseCustomer"]
        assert payload["customer"] is None
        assert [(e["field"], e["code"]) for e in payload["userErrors"]] == [("customerId", code)]

    async with shop.client.app.state.engine.connect() as connection:
        rows = (
            await connection.execute(
                select(col(AuditEvent.outcome), col(AuditEvent.codes), col(AuditEvent.actor))
                .where(col(AuditEvent.mutation) == "eraseCustomer")
                .order_by(col(AuditEvent.id))
            )
        ).all()
    assert [(outcome, codes) for outcome, codes, _ in rows] == [
        (AuditOutcome.FORBIDDEN, "FORBIDDEN"),
        (AuditOutcome.FORBIDDEN, "FORBIDDEN"),
        (AuditOutcome.FORBIDDEN, "FORBIDDEN"),
        (AuditOutcome.OK, ""),
        (AuditOutcome.USER_ERRORS, "NOT_FOUND"),
        (AuditOutcome.USER_ERRORS, "INVALID_ID"),
    ]
    assert rows[3][2] == "['staff']-['customers:erase']-None"
