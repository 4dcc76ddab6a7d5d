"""Who may see and do what: customers their own data, staff by scope, admins everything; no existence leaks."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import strawberry
from graphql import graphql

from integrations.store.models import Order, Product
from resolvers.access.principal import Principal, PrincipalKind
from schema import build_schema
from schema.permissions import declared, enforce
from tests.conftest import ANONYMOUS, GraphQLClient, app_settings_for, serve_in_process, token_for

CREATE_CUSTOMER = (
    "mutation($i: CreateCustomerInput!) { createCustomer(input: $i) { customer { id } userErrors { code } } }"
)
CREATE_PRODUCT = "mutation($i: CreateProductInput!) { createProduct(input: $i) { product { id } userErrors { code } } }"
PLACE = """mutation($i: PlaceOrderInput!) {
  placeOrder(input: $i) { order { id status customer { id } } userErrors { field code } }
}"""
CANCEL = "mutation($i: CancelOrderInput!) { cancelOrder(input: $i) { order { status } userErrors { field code } } }"
REFUND = "mutation($i: RefundOrderInput!) { refundOrder(input: $i) { order { status } userErrors { code } } }"
UPDATE = "mutation($i: UpdateCustomerInput!) { updateCustomer(input: $i) { customer { name } userErrors { code } } }"


@dataclass
class World:
    client: GraphQLClient
    ada: str
    bob: str
    product: str
    ada_order: str
    bob_order: str

    def as_(self, roles: list[str] | None = None, scopes: list[str] | None = None, customer: str | None = None) -> Any:
        claims: dict[str, Any] = {"roles": roles or [], "scopes": scopes or []}
        if customer is not None:
            claims["customer"] = customer
        token = token_for(self.client.settings, subject=f"{roles}-{scopes}-{customer}", **claims)
        return {"Authorization": f"Bearer {token}"}

    async def ask(self, query: str, headers: dict[str, str], **variables: Any) -> dict[str, Any]:
        response = await self.client.post(query, variables, headers=headers)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        for error in body.get("errors", []):
            assert error["extensions"]["code"] in {"FORBIDDEN", "NOT_FOUND"}, error
        return body


def forbidden_paths(body: dict[str, Any]) -> list[list[Any]]:
    return [e["path"] for e in body.get("errors", []) if e["extensions"]["code"] == "FORBIDDEN"]


@pytest.fixture
async def world(store_url: str, tmp_path: Path) -> AsyncIterator[World]:
    settings = app_settings_for(store_url, tmp_path, GATEWAY_ANONYMOUS_SCOPES="")
    async with serve_in_process(settings) as client:  # acting as an admin to set the world up
        ids = []
        for email in ("ada@example.com", "bob@example.com"):
            data = await client.execute(CREATE_CUSTOMER, {"i": {"email": email, "name": email[:3]}})
            ids.append(data["createCustomer"]["customer"]["id"])
        price = {"amount": 500, "currency": "EUR"}
        product = (await client.execute(CREATE_PRODUCT, {"i": {"sku": "P", "name": "P", "price": price, "stock": 9}}))[
            "createProduct"
        ]["product"]["id"]
        orders = []
        for index, customer in enumerate(ids):
            value = {
                "customerId": customer,
                "lines": [{"productId": product, "quantity": 1}],
                "paymentMethod": "pm_card_visa",
                "idempotencyKey": f"k{index}",
            }
            orders.append((await client.execute(PLACE, {"i": value}))["placeOrder"]["order"]["id"])
        yield World(client, ids[0], ids[1], product, orders[0], orders[1])


async def test_a_customer_sees_its_own_data_and_nothing_of_others(world: World) -> None:
    ada = world.as_(roles=["customer"], customer=world.ada)
    query = """query($ada: ID!, $bob: ID!, $adaOrder: ID!, $bobOrder: ID!) {
      me: customer(id: $ada) { email orders { totalCount } }
      other: customer(id: $bob) { email }
      mine: order(id: $adaOrder) { id customer { email } }
      theirs: order(id: $bobOrder) { id }
      node(id: $bob) { id }
      nodes(ids: [$ada, $bobOrder, $adaOrder]) { id }
      orders { edges { node { id } } }
    }"""
    body = await world.ask(query, ada, ada=world.ada, bob=world.bob, adaOrder=world.ada_order, bobOrder=world.bob_order)
    data = body["data"]
    assert "errors" not in body
    assert data["me"] == {"email": "ada@example.com", "orders": {"totalCount": 1}}
    assert data["other"] is None  # exactly what a missing customer looks like
    assert data["theirs"] is None
    assert data["node"] is None
    assert data["mine"] == {"id": world.ada_order, "customer": {"email": "ada@example.com"}}
    assert data["nodes"] == [{"id": world.ada}, None, {"id": world.ada_order}]
    assert [e["node"]["id"] for e in data["orders"]["edges"]] == [world.ada_order]


async def test_a_customer_may_not_list_customers_the_field_is_null_and_forbidden(world: World) -> None:
    ada = world.as_(roles=["customer"], customer=world.ada)
    body = await world.ask("{ customers { totalCount } products { totalCount } }", ada)
    assert body["data"] == {"customers": None, "products": {"totalCount": 1}}  # the rest of the answer survives
    assert forbidden_paths(body) == [["customers"]]
    assert "customers:read" in body["errors"][0]["message"]


async def test_staff_see_by_scope_and_pii_needs_customers_read(world: World) -> None:
    orders_only = world.as_(roles=["staff"], scopes=["orders:read"])
    query = "query($id: ID!) { order(id: $id) { customer { id email } } orders { totalCount } }"
    body = await world.ask(query, orders_only, id=world.bob_order)
    assert body["data"]["order"]["customer"] == {"id": world.bob, "email": None}
    assert body["data"]["orders"] == {"totalCount": 2}
    assert forbidden_paths(body) == [["order", "customer", "email"]]

    support = world.as_(roles=["staff"], scopes=["customers:read"])
    body = await world.ask("{ customers { edges { node { email } } } }", support)
    assert [e["node"]["email"] for e in body["data"]["customers"]["edges"]] == ["ada@example.com", "bob@example.com"]


async def test_anonymous_reads_the_catalogue_only(world: World) -> None:
    body = await world.ask(
        "query($id: ID!) { products { totalCount } customer(id: $id) { id } orders { totalCount } }",
        ANONYMOUS,
        id=world.ada,
    )
    assert body["data"] == {"products": {"totalCount": 1}, "customer": None, "orders": None}
    assert forbidden_paths(body) == [["orders"]]


@pytest.mark.parametrize(
    ("who", "allowed"),
    [
        ({}, False),
        ({"roles": ["staff"], "scopes": ["customers:read", "orders:write"]}, False),
        ({"roles": ["admin"]}, True),
    ],
)
async def test_products_are_changed_by_admins_only(world: World, who: dict[str, Any], allowed: bool) -> None:
    headers = world.as_(**who) if who else ANONYMOUS
    value = {"sku": "NEW", "name": "New", "price": {"amount": 1, "currency": "EUR"}}
    response = await world.client.post(CREATE_PRODUCT, {"i": value}, headers=headers)
    body = response.json()
    if allowed:
        assert body["data"]["createProduct"]["userErrors"] == []
        assert await world.client.count(Product) == 2
    else:
        assert body["data"] is None
        assert forbidden_paths(body) == [["createProduct"]]
        assert await world.client.count(Product) == 1


async def test_a_customer_orders_and_cancels_for_itself_only(world: World) -> None:
    ada = world.as_(roles=["customer"], customer=world.ada)

    def order(customer: str, key: str) -> dict[str, Any]:
        lines = [{"productId": world.product, "quantity": 1}]
        return {"i": {"customerId": customer, "lines": lines, "paymentMethod": "pm_card_visa", "idempotencyKey": key}}

    body = (await world.client.post(PLACE, order(world.bob, "x"), headers=ada)).json()
    assert forbidden_paths(body) == [["placeOrder"]]
    assert await world.client.count(Order) == 2

    own = (await world.client.post(PLACE, order(world.ada, "y"), headers=ada)).json()["data"]["placeOrder"]
    assert own["order"]["status"] == "PAID"
    assert own["order"]["customer"] == {"id": world.ada}

    theirs = (await world.client.post(CANCEL, {"i": {"orderId": world.bob_order}}, headers=ada)).json()
    assert theirs["data"]["cancelOrder"]["userErrors"] == [{"field": "orderId", "code": "NOT_FOUND"}]
    mine = (await world.client.post(CANCEL, {"i": {"orderId": world.ada_order}}, headers=ada)).json()
    assert mine["data"]["cancelOrder"]["order"]["status"] == "CANCELLED"


async def test_a_customer_updates_itself_only(world: World) -> None:
    ada = world.as_(roles=["customer"], customer=world.ada)
    body = (await world.client.post(UPDATE, {"i": {"id": world.bob, "name": "Mallory"}}, headers=ada)).json()
    assert forbidden_paths(body) == [["updateCustomer"]]
    body = (await world.client.post(UPDATE, {"i": {"id": world.ada, "name": "Ada L."}}, headers=ada)).json()
    assert body["data"]["updateCustomer"]["customer"] == {"name": "Ada L."}


async def test_refunds_need_payments_write(world: World) -> None:
    variables: dict[str, object] = {"i": {"orderId": world.ada_order, "amount": 100}}
    support = world.as_(roles=["staff"], scopes=["orders:write", "orders:read"])
    body = (await world.client.post(REFUND, variables, headers=support)).json()
    assert forbidden_paths(body) == [["refundOrder"]]
    finance = world.as_(roles=["staff"], scopes=["payments:write"])
    body = (await world.client.post(REFUND, variables, headers=finance)).json()
    assert body["data"]["refundOrder"]["order"]["status"] == "PARTIALLY_REFUNDED"


async def test_cached_answers_never_cross_principals(world: World) -> None:
    query = "{ orders { edges { node { id } } } }"
    ada = world.as_(roles=["customer"], customer=world.ada)
    bob = world.as_(roles=["customer"], customer=world.bob)
    for _ in range(2):
        for who, expected in ((ada, world.ada_order), (bob, world.bob_order)):
            response = await world.client.post(query, headers=who)
            assert [e["node"]["id"] for e in response.json()["data"]["orders"]["edges"]] == [expected]
    staff = [world.as_(roles=["staff"], scopes=["orders:read"]) for _ in range(2)]
    first = await world.client.post(query, headers=staff[0])
    second = await world.client.post(query, headers={"Authorization": staff[1]["Authorization"]})
    assert (first.headers["x-cache"], second.headers["x-cache"]) == ("MISS", "HIT")  # same grants share


def test_every_mutation_declares_who_may_run_it() -> None:
    schema = build_schema()
    mutation = schema.get_type_by_name("Mutation")
    assert mutation is not None
    undeclared = [f.name for f in mutation.fields if not declared(f)]  # type: ignore[union-attr]
    assert undeclared == []


async def test_an_undeclared_mutation_is_denied_to_all_but_admins() -> None:
    """Deny by default: `enforce` guards mutation fields that forgot their declaration."""

    @strawberry.type
    class Query:
        ping: str = "pong"

    @strawberry.type
    class Mutation:
        @strawberry.mutation
        def forgotten(self) -> str:
            return "ran"

    schema = strawberry.Schema(query=Query, mutation=Mutation)
    enforce(schema._schema)

    class Context:
        def __init__(self, principal: Principal) -> None:
            self.principal = principal

    staff = Principal(PrincipalKind.USER, "s", roles=frozenset({"staff"}), scopes=frozenset({"orders:write"}))
    admin = Principal(PrincipalKind.USER, "a", roles=frozenset({"admin"}))
    refused = await graphql(schema._schema, "mutation { forgotten }", context_value=Context(staff))
    ran = await graphql(schema._schema, "mutation { forgotten }", context_value=Context(admin))
    assert refused.data is None
    assert refused.errors is not None
    assert ran.data == {"forgotten": "ran"}
