"""The audit log: one row per mutation whatever its outcome, no personal data or secrets in it, `auditEvents`
for auditors, and migration 0005; on both databases."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, insert, inspect, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError
from sqlmodel import col

import schema.customer.mutations
from integrations.errors import ErrorCode, UpstreamUnavailableError
from integrations.store import migrate
from integrations.store.engine import create_engine, create_sessionmaker
from integrations.store.models import AuditEvent, AuditOutcome
from resolvers.access.api_keys import create_api_key
from schema import build_schema
from schema.ids import encode_id
from tests.conftest import (
    ANONYMOUS,
    GraphQLClient,
    app_settings_for,
    postgres_admin_execute,
    postgres_url,
    serve_in_process,
    token_for,
)
from tests.integrations.store.test_migrations import schema_diff

CREATE_CUSTOMER = """mutation CreateCustomer($i: CreateCustomerInput!) {
  createCustomer(input: $i) { customer { id } userErrors { field code } }
}"""
UPDATE_CUSTOMER = """mutation UpdateCustomer($i: UpdateCustomerInput!) {
  updateCustomer(input: $i) { customer { id } userErrors { field code } }
}"""
CREATE_PRODUCT = """mutation CreateProduct($i: CreateProductInput!) {
  createProduct(input: $i) { product { id } userErrors { field code } }
}"""
UPDATE_PRODUCT = """mutation UpdateProduct($i: UpdateProductInput!) {
  updateProduct(input: $i) { product { id } userErrors { field code } }
}"""
PLACE_ORDER = """mutation PlaceOrder($i: PlaceOrderInput!) {
  placeOrder(input: $i) { order { id } userErrors { field code } }
}"""
REFUND_ORDER = """mutation RefundOrder($i: RefundOrderInput!) {
  refundOrder(input: $i) { order { id } userErrors { field code } }
}"""
CANCEL_ORDER = """mutation CancelOrder($i: CancelOrderInput!) {
  cancelOrder(input: $i) { order { id } userErrors { field code } }
}"""
EXPORT = """mutation Export($id: ID!) {
  exportCustomerData(customerId: $id) { data userErrors { field code } }
}"""
ERASE = """mutation Erase($id: ID!) {
  eraseCustomer(customerId: $id) { customer { id } userErrors { field code } }
}"""
AUDIT_EVENTS = """query Audit($first: Int, $after: String, $last: Int, $filter: AuditEventFilter) {
  auditEvents(first: $first, after: $after, last: $last, filter: $filter) {
    totalCount
    edges { cursor node { id createdAt actorKind actor mutation operationName targets outcome codes } }
    pageInfo { hasNextPage endCursor }
  }
}"""
ADA = {"email": "ada.lovelace@example.com", "name": "Ada Lovelace"}


async def clear_audit_log(url: str) -> None:
    """`audit_event` is not among the tables conftest empties; the tests here start from an empty log."""
    engine = create_engine(url)
    try:
        async with engine.begin() as connection:
            await connection.execute(delete(AuditEvent))
    finally:
        await engine.dispose()


async def audit_rows(client: GraphQLClient) -> list[AuditEvent]:
    async with create_sessionmaker(client.app.state.engine)() as session:
        return list((await session.scalars(select(AuditEvent).order_by(col(AuditEvent.id)))).all())


def headers_for(
    client: GraphQLClient, *, roles: list[str], scopes: list[str] | None = None, **claims: Any
) -> dict[str, str]:
    subject = f"{'-'.join(roles) or 'none'}-{'-'.join(scopes or []) or 'none'}"
    token = token_for(client.settings, subject=subject, roles=roles, scopes=scopes or [], **claims)
    return {"Authorization": f"Bearer {token}"}


@dataclass
class Shop:
    client: GraphQLClient
    customer: str
    product: str
    order: str

    async def run(self, query: str, variables: dict[str, Any], headers: dict[str, str] | None = None) -> Any:
        response = await self.client.post(query, variables, headers=headers)
        assert response.status_code == 200, response.text
        return response.json()

    async def one_new_row(self, query: str, variables: dict[str, Any], **kwargs: Any) -> tuple[AuditEvent, Any]:
        """Run a mutation; it must have added exactly one audit row, returned with the response body."""
        before = len(await audit_rows(self.client))
        body = await self.run(query, variables, **kwargs)
        rows = await audit_rows(self.client)
        assert len(rows) == before + 1, [(r.mutation, r.outcome) for r in rows[before:]]
        return rows[-1], body


@pytest.fixture
async def client(store_url: str, tmp_path: Path) -> AsyncIterator[GraphQLClient]:
    await clear_audit_log(store_url)
    async with serve_in_process(app_settings_for(store_url, tmp_path, GATEWAY_ANONYMOUS_SCOPES="")) as client:
        yield client


@pytest.fixture
async def shop(client: GraphQLClient) -> Shop:
    customer = (await client.execute(CREATE_CUSTOMER, {"i": ADA}))["createCustomer"]["customer"]["id"]
    price = {"amount": 500, "currency": "EUR"}
    product_input = {"sku": "LAMP", "name": "Lamp", "price": price, "stock": 50}
    product = (await client.execute(CREATE_PRODUCT, {"i": product_input}))["createProduct"]["product"]["id"]
    order = await place(client, customer, product, "setup")
    return Shop(client, customer, product, order)


async def place(client: GraphQLClient, customer: str, product: str, key: str) -> str:
    line = {"productId": product, "quantity": 1}
    value = {"customerId": customer, "lines": [line], "paymentMethod": "pm_card_visa", "idempotencyKey": key}
    data = await client.execute(PLACE_ORDER, {"i": value})
    return str(data["placeOrder"]["order"]["id"])


def assert_no_pii_or_secret(rows: list[AuditEvent], *secrets: str) -> None:
    for row in rows:
        text = " ".join(str(getattr(row, column.key)) for column in inspect(row).mapper.column_attrs).lower()
        for secret in (ADA["email"], ADA["name"], "ada.lovelace", "lovelace", *secrets):
            assert secret.lower() not in text, (secret, row)


# ---- every mutation, every outcome ------------------------------------------------------------------------------


def test_every_mutation_field_is_audited() -> None:
    """Each root mutation resolver is wrapped once, outside the `@requires` guard."""
    mutation = build_schema()._schema.mutation_type
    assert mutation is not None
    unwrapped = [name for name, field in mutation.fields.items() if getattr(field.resolve, "__name__", "") != "audited"]
    assert unwrapped == []
    assert set(mutation.fields) == set(OK_CASES)  # a new mutation needs a case below


Case = Callable[[Shop], tuple[str, dict[str, Any]]]
OK_CASES: dict[str, Case] = {
    "createCustomer": lambda s: (CREATE_CUSTOMER, {"i": {"email": "grace@example.com", "name": "Grace Hopper"}}),
    "updateCustomer": lambda s: (UPDATE_CUSTOMER, {"i": {"id": s.customer, "name": "A. L."}}),
    "createProduct": lambda s: (
        CREATE_PRODUCT,
        {"i": {"sku": "DESK", "name": "Desk", "price": {"amount": 9900, "currency": "EUR"}, "stock": 1}},
    ),
    "updateProduct": lambda s: (UPDATE_PRODUCT, {"i": {"id": s.product, "name": "Brass lamp"}}),
    "placeOrder": lambda s: (
        PLACE_ORDER,
        {
            "i": {
                "customerId": s.customer,
                "lines": [{"productId": s.product, "quantity": 2}],
                "paymentMethod": "pm_card_visa",
                "idempotencyKey": "ok-case",
            }
        },
    ),
    "refundOrder": lambda s: (REFUND_ORDER, {"i": {"orderId": s.order, "amount": 100}}),
    "cancelOrder": lambda s: (CANCEL_ORDER, {"i": {"orderId": s.order}}),
    "exportCustomerData": lambda s: (EXPORT, {"id": s.customer}),
    "eraseCustomer": lambda s: (ERASE, {"id": s.customer}),
}


@pytest.mark.parametrize("mutation", sorted(OK_CASES))
async def test_each_mutation_writes_exactly_one_ok_row(shop: Shop, mutation: str) -> None:
    query, variables = OK_CASES[mutation](shop)
    row, body = await shop.one_new_row(query, variables)
    payload = body["data"][mutation]
    assert payload["userErrors"] == []
    assert (row.mutation, row.outcome, row.codes) == (mutation, AuditOutcome.OK, "")
    assert row.operation_name == query.split()[1].split("(")[0]
    assert (row.actor_kind, row.actor) == ("user", "test-admin")
    assert row.created_at <= datetime.now(UTC)
    returned = [value["id"] for value in payload.values() if isinstance(value, dict) and "id" in value]
    for target in returned:
        assert target in row.targets.split()
    if mutation in ("updateCustomer", "exportCustomerData", "eraseCustomer"):
        assert shop.customer in row.targets.split()
    admin_token = shop.client.http.headers["authorization"].removeprefix("Bearer ")
    assert_no_pii_or_secret(await audit_rows(shop.client), "grace", "hopper", admin_token)


async def test_the_setup_mutations_were_audited_with_their_targets(shop: Shop) -> None:
    rows = await audit_rows(shop.client)
    assert [(r.mutation, r.outcome) for r in rows] == [
        ("createCustomer", "OK"),
        ("createProduct", "OK"),
        ("placeOrder", "OK"),
    ]
    assert rows[0].targets == shop.customer
    assert set(rows[2].targets.split()) == {shop.customer, shop.order}  # the lines' products are not targets


async def test_user_errors_are_recorded_with_their_codes_and_nothing_the_client_typed(shop: Shop) -> None:
    invalid = {"i": {"email": "not an address lovelace", "name": "Lovelace"}}
    row, body = await shop.one_new_row(CREATE_CUSTOMER, invalid)
    assert body["data"]["createCustomer"]["userErrors"] == [{"field": "email", "code": "INVALID_EMAIL"}]
    assert (row.outcome, row.codes, row.targets) == (AuditOutcome.USER_ERRORS, "INVALID_EMAIL", "")

    duplicate, _ = await shop.one_new_row(CREATE_CUSTOMER, {"i": ADA})
    assert (duplicate.outcome, duplicate.codes) == (AuditOutcome.USER_ERRORS, "DUPLICATE")

    missing = encode_id("Customer", 999_999)
    row, _ = await shop.one_new_row(ERASE, {"id": missing})
    assert (row.outcome, row.codes, row.targets) == (AuditOutcome.USER_ERRORS, "NOT_FOUND", missing)

    # A client's free text in an ID field never reaches the log, even when it "decodes".
    row, _ = await shop.one_new_row(EXPORT, {"id": "ada.lovelace@example.com"})
    assert (row.outcome, row.codes, row.targets) == (AuditOutcome.USER_ERRORS, "INVALID_ID", "")
    assert_no_pii_or_secret(await audit_rows(shop.client))


async def test_refusals_are_recorded_as_forbidden(shop: Shop) -> None:
    customer = headers_for(shop.client, roles=["customer"], customer=shop.customer)
    other = (await shop.client.execute(CREATE_CUSTOMER, {"i": {"email": "bob@example.com", "name": "Bob"}}))[
        "createCustomer"
    ]["customer"]["id"]

    refused = [
        (CREATE_PRODUCT, OK_CASES["createProduct"](shop)[1], customer),  # the @requires guard
        (UPDATE_CUSTOMER, {"i": {"id": other, "name": "Mallory"}}, customer),  # a rule inside the resolver
        (ERASE, {"id": shop.customer}, customer),
        (CREATE_CUSTOMER, {"i": {"email": "x@example.com", "name": "X"}}, ANONYMOUS),
    ]
    for query, variables, headers in refused:
        row, body = await shop.one_new_row(query, variables, headers=headers)
        assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
        assert (row.outcome, row.codes) == (AuditOutcome.FORBIDDEN, "FORBIDDEN")
    rows = await audit_rows(shop.client)
    assert [(r.actor_kind, r.actor) for r in rows[-4:]] == [
        ("user", "customer-none"),
        ("user", "customer-none"),
        ("user", "customer-none"),
        ("anonymous", None),
    ]
    assert rows[-3].targets == other  # what it tried to change
    assert_no_pii_or_secret(rows, customer["Authorization"].removeprefix("Bearer "), "mallory")


async def test_a_mutation_that_raises_is_recorded_with_the_error_code(
    shop: Shop, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def crash(*_args: object) -> None:
        raise RuntimeError("the disk caught fire while storing ada.lovelace@example.com")

    async def unavailable(*_args: object) -> None:
        raise UpstreamUnavailableError("payments", "down", code=ErrorCode.PAYMENT_PROVIDER_UNAVAILABLE)

    for replacement, code in ((crash, "INTERNAL_SERVER_ERROR"), (unavailable, "PAYMENT_PROVIDER_UNAVAILABLE")):
        monkeypatch.setattr(schema.customer.mutations, "update_customer", replacement)
        row, body = await shop.one_new_row(UPDATE_CUSTOMER, {"i": {"id": shop.customer, "name": "A"}})
        assert body["data"] is None  # the payload is non-null: the error nulls the whole answer
        assert body["errors"][0]["extensions"]["code"] == code
        assert (row.mutation, row.outcome, row.codes, row.targets) == (
            "updateCustomer",
            AuditOutcome.ERROR,
            code,
            shop.customer,
        )
    assert_no_pii_or_secret(await audit_rows(shop.client))


async def test_each_mutation_of_an_operation_gets_its_row_and_queries_none(shop: Shop) -> None:
    before = len(await audit_rows(shop.client))
    both = """mutation Both($id: ID!) {
      a: updateCustomer(input: {id: $id, name: "A"}) { userErrors { code } }
      b: updateCustomer(input: {id: $id, email: "not-an-email"}) { userErrors { code } }
    }"""
    await shop.run(both, {"id": shop.customer})
    await shop.client.execute("query Read($id: ID!) { customer(id: $id) { name } }", {"id": shop.customer})
    await shop.run("query { auditEvents { totalCount } }", {})
    rows = (await audit_rows(shop.client))[before:]
    assert [(r.mutation, r.operation_name, r.outcome, r.codes) for r in rows] == [
        ("updateCustomer", "Both", "OK", ""),
        ("updateCustomer", "Both", "USER_ERRORS", "INVALID_EMAIL"),
    ]


async def test_an_api_key_is_recorded_by_its_id_never_the_key(shop: Shop) -> None:
    created = await create_api_key(create_sessionmaker(shop.client.app.state.engine), "acme", ["customers:write"])
    row, body = await shop.one_new_row(
        UPDATE_CUSTOMER, {"i": {"id": shop.customer, "name": "Ada"}}, headers={"X-API-Key": created.key}
    )
    assert body["data"]["updateCustomer"]["userErrors"] == []
    assert (row.actor_kind, row.actor) == ("api_key", f"apikey:{created.record.public_id}")
    secret = created.key.rsplit("_", 1)[1]
    assert_no_pii_or_secret([row], created.key, secret)


async def test_a_failed_audit_write_is_logged_and_the_answer_stands(
    shop: Shop, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    async def broken(*_args: object) -> None:
        raise OSError("audit store unreachable")

    monkeypatch.setattr("schema.audit.extension.record", broken)
    body = await shop.run(UPDATE_CUSTOMER, {"i": {"id": shop.customer, "name": "Ada"}})
    assert body["data"]["updateCustomer"]["userErrors"] == []
    assert "audit event not stored" in caplog.text
    assert "updateCustomer" in caplog.text


# ---- auditEvents ------------------------------------------------------------------------------------------------


async def audit_events(shop: Shop, headers: dict[str, str] | None = None, **variables: Any) -> Any:
    body = await shop.run(AUDIT_EVENTS, variables, headers=headers)
    assert "errors" not in body, body
    return body["data"]["auditEvents"]


async def test_audit_events_need_audit_read(shop: Shop) -> None:
    refused = [
        headers_for(shop.client, roles=["staff"], scopes=["customers:read", "orders:read", "customers:erase"]),
        headers_for(shop.client, roles=["customer"], customer=shop.customer),
        ANONYMOUS,
    ]
    for headers in refused:
        body = await shop.run(AUDIT_EVENTS, {}, headers=headers)
        assert body["data"] == {"auditEvents": None}
        assert [e["extensions"]["code"] for e in body["errors"]] == ["FORBIDDEN"]
    auditor = headers_for(shop.client, roles=["staff"], scopes=["audit:read"])
    assert (await audit_events(shop, auditor))["totalCount"] == 3
    assert (await audit_events(shop))["totalCount"] == 3  # admin


async def test_audit_events_filter_and_paginate(shop: Shop) -> None:
    customer = headers_for(shop.client, roles=["customer"], customer=shop.customer)
    await shop.run(CREATE_PRODUCT, OK_CASES["createProduct"](shop)[1], headers=customer)  # FORBIDDEN
    await shop.run(CREATE_CUSTOMER, {"i": {"email": "bad", "name": "X"}})  # USER_ERRORS
    middle = datetime.now(UTC)
    await asyncio.sleep(0.01)
    await shop.run(UPDATE_CUSTOMER, {"i": {"id": shop.customer, "name": "Ada"}})  # OK

    everything = await audit_events(shop, first=100)
    assert everything["totalCount"] == 6
    nodes = [edge["node"] for edge in everything["edges"]]
    assert [n["mutation"] for n in nodes] == [
        "createCustomer",
        "createProduct",
        "placeOrder",
        "createProduct",
        "createCustomer",
        "updateCustomer",
    ]
    assert nodes[3] | {"id": None, "createdAt": None} == {
        "id": None,
        "createdAt": None,
        "actorKind": "USER",
        "actor": "customer-none",
        "mutation": "createProduct",
        "operationName": "CreateProduct",
        "targets": [],
        "outcome": "FORBIDDEN",
        "codes": ["FORBIDDEN"],
    }

    async def mutations(**filter_: Any) -> list[str]:
        page = await audit_events(shop, first=100, filter=filter_)
        assert page["totalCount"] == len(page["edges"])
        return [edge["node"]["mutation"] for edge in page["edges"]]

    assert await mutations(actor="customer-none") == ["createProduct"]
    assert await mutations(mutation="createCustomer") == ["createCustomer", "createCustomer"]
    assert await mutations(outcome="USER_ERRORS") == ["createCustomer"]
    assert await mutations(outcome="OK", mutation="createProduct") == ["createProduct"]
    assert await mutations(since=middle.isoformat()) == ["updateCustomer"]
    assert len(await mutations(until=middle.isoformat())) == 5
    future = (middle + timedelta(days=1)).isoformat()
    assert await mutations(since=future) == []
    assert await mutations(actor="nobody") == []

    # Pages of two, forwards to the end, and the newest from the back.
    seen: list[str] = []
    after = None
    while True:
        page = await audit_events(shop, first=2, after=after)
        seen += [edge["node"]["id"] for edge in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert seen == [n["id"] for n in nodes]
    newest = await audit_events(shop, last=1)
    assert [edge["node"]["mutation"] for edge in newest["edges"]] == ["updateCustomer"]


async def test_bad_audit_filters_are_coded_errors_not_500s(shop: Shop) -> None:
    cases: list[tuple[dict[str, Any], str]] = [
        ({"filter": {"since": "2026-01-01T00:00:00"}}, "INVALID"),  # no time zone: ambiguous
        ({"filter": {"actor": "a\u0000b"}}, "INVALID"),
        ({"after": "not-a-cursor"}, "INVALID_CURSOR"),
        ({"first": 1000}, "PAGE_SIZE_EXCEEDED"),
    ]
    for variables, code in cases:
        body = await shop.run(AUDIT_EVENTS, variables)
        assert body["data"] == {"auditEvents": None}, body
        assert [e["extensions"]["code"] for e in body["errors"]] == [code]


async def test_audit_events_are_never_cached(shop: Shop) -> None:
    for _ in range(2):
        response = await shop.client.post(AUDIT_EVENTS, {})
        assert response.headers["x-cache"] == "BYPASS"
        assert response.headers["cache-control"] == "no-store"


# ---- migration 0005 ---------------------------------------------------------------------------------------------


async def _tables_and_indexes(url: str) -> tuple[set[str], set[str]]:
    engine = create_engine(url)

    def read(connection: Connection) -> tuple[set[str], set[str]]:
        inspector = inspect(connection)
        tables = set(inspector.get_table_names())
        indexes = {i["name"] or "" for i in inspector.get_indexes("audit_event")} if "audit_event" in tables else set()
        return tables, indexes

    try:
        async with engine.connect() as connection:
            return await connection.run_sync(read)
    finally:
        await engine.dispose()


@pytest.fixture
async def scratch_url(database_url: str, tmp_path: Path) -> AsyncIterator[str]:
    """A database of its own on the backend under test (the shared one stays at head)."""
    if database_url.startswith("sqlite"):
        yield f"sqlite+aiosqlite:///{tmp_path}/audit.db"
        return
    name = f"gw_audit_{uuid.uuid4().hex[:12]}"
    await postgres_admin_execute(f'CREATE DATABASE "{name}"')
    try:
        yield postgres_url(name)
    finally:
        await postgres_admin_execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def test_migration_0005_upgrades_and_downgrades_cleanly(scratch_url: str) -> None:
    await asyncio.to_thread(migrate.upgrade, scratch_url, "0004")
    assert "audit_event" not in (await _tables_and_indexes(scratch_url))[0]

    await asyncio.to_thread(migrate.upgrade, scratch_url)
    tables, indexes = await _tables_and_indexes(scratch_url)
    assert "audit_event" in tables
    assert {"ix_audit_event_created_at", "ix_audit_event_actor_id", "ix_audit_event_mutation_id"} <= indexes
    assert await schema_diff(scratch_url) == []

    engine = create_engine(scratch_url)
    try:
        async with engine.begin() as connection:
            row = {"created_at": datetime.now(UTC), "actor_kind": "user", "mutation": "m", "outcome": "OK"}
            await connection.execute(insert(AuditEvent).values(**row))
        with pytest.raises(IntegrityError):  # the outcome is one of the four
            async with engine.begin() as connection:
                await connection.execute(update(AuditEvent).values(outcome="MAYBE"))
    finally:
        await engine.dispose()

    await asyncio.to_thread(migrate.downgrade, scratch_url, "0004")
    assert "audit_event" not in (await _tables_and_indexes(scratch_url))[0]
    assert await migrate.current_revision(scratch_url) == "0004"
    await asyncio.to_thread(migrate.upgrade, scratch_url)
    assert await schema_diff(scratch_url) == []
