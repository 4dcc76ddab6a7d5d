"""Root queries: lookups by global ID, cursor pagination in both directions, filters."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select, update
from sqlmodel import col

from integrations.store.models import Order
from integrations.store.session import StoreSession
from resolvers.seed import SeedSize, seed
from tests.conftest import GraphQLClient


@pytest.fixture
async def seeded(client: GraphQLClient, store: StoreSession) -> GraphQLClient:
    await seed(store, SeedSize(customers=12, products=10, orders=25, lines_per_order=2))
    return client


async def walk(client: GraphQLClient, field: str, *, forward: bool, size: int) -> list[str]:
    """Collect every ID of a connection page by page."""
    ids: list[str] = []
    cursor = None
    args = "first: $n, after: $c" if forward else "last: $n, before: $c"
    while True:
        data = await client.execute(
            f"query($n: Int, $c: String) {{ {field}({args}) {{ totalCount edges {{ node {{ id }} }} "
            "pageInfo { hasNextPage hasPreviousPage startCursor endCursor } } }",
            {"n": size, "c": cursor},
        )
        connection: dict[str, Any] = data[field]
        page = [edge["node"]["id"] for edge in connection["edges"]]
        ids = ids + page if forward else page + ids
        info = connection["pageInfo"]
        more = info["hasNextPage"] if forward else info["hasPreviousPage"]
        if not more:
            return ids
        cursor = info["endCursor"] if forward else info["startCursor"]


@pytest.mark.parametrize("field", ["customers", "products", "orders"])
async def test_forward_and_backward_pagination_visit_everything_once(seeded: GraphQLClient, field: str) -> None:
    everything = await seeded.execute(f"{{ {field}(first: 100) {{ totalCount edges {{ node {{ id }} }} }} }}")
    all_ids = [e["node"]["id"] for e in everything[field]["edges"]]
    assert len(all_ids) == everything[field]["totalCount"]
    assert await walk(seeded, field, forward=True, size=4) == all_ids
    assert await walk(seeded, field, forward=False, size=3) == all_ids


async def test_page_info_edges(seeded: GraphQLClient) -> None:
    data = await seeded.execute("{ orders(first: 0) { edges { cursor } pageInfo { hasNextPage startCursor } } }")
    assert data == {"orders": {"edges": [], "pageInfo": {"hasNextPage": True, "startCursor": None}}}
    data = await seeded.execute("{ orders { edges { cursor } } }")
    assert len(data["orders"]["edges"]) == 20


async def test_invalid_cursor_and_both_directions(client: GraphQLClient) -> None:
    body = (await client.post('{ orders(after: "garbage") { totalCount } }')).json()
    assert body["errors"][0]["extensions"]["code"] == "INVALID_CURSOR"
    body = (await client.post("{ orders(first: 1, last: 1) { totalCount } }")).json()
    assert body["errors"][0]["extensions"]["code"] == "INVALID"


async def test_lookup_by_id_and_node(seeded: GraphQLClient) -> None:
    order = await seeded.execute("{ orders(first: 1) { edges { node { id number customer { id name } } } } }")
    node = order["orders"]["edges"][0]["node"]
    by_id = await seeded.execute("query($id: ID!) { order(id: $id) { number } }", {"id": node["id"]})
    assert by_id == {"order": {"number": node["number"]}}
    as_node = await seeded.execute(
        "query($id: ID!) { node(id: $id) { __typename id ... on Customer { name } } }", {"id": node["customer"]["id"]}
    )
    assert as_node == {"node": {"__typename": "Customer", **node["customer"]}}


async def test_missing_objects_are_null_without_errors(client: GraphQLClient) -> None:
    missing = "Q3VzdG9tZXI6OTk5OTk"  # Customer:99999
    body = (await client.post(f'{{ customer(id: "{missing}") {{ id }} node(id: "{missing}") {{ id }} }}')).json()
    assert body == {"data": {"customer": None, "node": None}}
    unknown_type = "V2lkZ2V0OjE"  # Widget:1
    body = (await client.post(f'{{ node(id: "{unknown_type}") {{ id }} }}')).json()
    assert body == {"data": {"node": None}}


async def test_nodes_limit(client: GraphQLClient) -> None:
    body = (await client.post("query($ids: [ID!]!) { nodes(ids: $ids) { id } }", {"ids": ["x"] * 101})).json()
    assert body["errors"][0]["extensions"]["code"] == "OUT_OF_RANGE"


async def test_customer_filters(seeded: GraphQLClient) -> None:
    data = await seeded.execute('{ customers(filter: {emailContains: "CUSTOMER1"}) { edges { node { email } } } }')
    emails = {e["node"]["email"] for e in data["customers"]["edges"]}
    assert emails == {
        "customer1@example.com",
        "customer10@example.com",
        "customer11@example.com",
        "customer12@example.com",
    }
    data = await seeded.execute('{ customers(filter: {nameContains: "%"}) { totalCount } }')
    assert data == {"customers": {"totalCount": 0}}  # LIKE wildcards match literally


async def test_product_filters(seeded: GraphQLClient) -> None:
    data = await seeded.execute(
        '{ products(filter: {skuIn: ["SKU-00001", "SKU-00003", "NOPE"]}) { edges { node { sku } } } }'
    )
    assert [e["node"]["sku"] for e in data["products"]["edges"]] == ["SKU-00001", "SKU-00003"]
    stocked = await seeded.execute("{ products(first: 100, filter: {inStock: true}) { edges { node { stock } } } }")
    empty = await seeded.execute("{ products(first: 100, filter: {inStock: false}) { edges { node { stock } } } }")
    stocks = [e["node"]["stock"] for e in stocked["products"]["edges"]]
    zeros = [e["node"]["stock"] for e in empty["products"]["edges"]]
    assert all(s > 0 for s in stocks)
    assert all(s == 0 for s in zeros)
    assert len(stocks) + len(zeros) == 10


async def test_order_filters(seeded: GraphQLClient, store: StoreSession) -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    async with store.transaction() as session:
        ids = (await session.scalars(select(col(Order.id)).order_by(col(Order.id)))).all()
        for day, pk in enumerate(ids, start=1):
            await session.execute(
                update(Order).where(col(Order.id) == pk).values(created_at=start + timedelta(days=day))
            )
    data = await seeded.execute(
        '{ orders(first: 100, filter: {createdAfter: "2026-01-05T00:00:00Z",'
        ' createdBefore: "2026-01-08T00:00:00+00:00"}) { edges { node { createdAt } } } }'
    )
    assert [e["node"]["createdAt"][:10] for e in data["orders"]["edges"]] == [
        "2026-01-05",
        "2026-01-06",
        "2026-01-07",
    ]
    all_orders = await seeded.execute("{ orders(first: 100) { edges { node { status customer { id } } } } }")
    edges = all_orders["orders"]["edges"]
    paid = await seeded.execute("{ orders(first: 100, filter: {status: PAID}) { totalCount } }")
    assert paid["orders"]["totalCount"] == sum(e["node"]["status"] == "PAID" for e in edges)
    customer_id = edges[0]["node"]["customer"]["id"]
    mine = await seeded.execute(
        "query($c: ID!) { orders(first: 100, filter: {customerId: $c}) { edges { node { customer { id } } } } }",
        {"c": customer_id},
    )
    mine_edges = mine["orders"]["edges"]
    assert mine_edges
    assert {e["node"]["customer"]["id"] for e in mine_edges} == {customer_id}
    assert len(mine_edges) == sum(e["node"]["customer"]["id"] == customer_id for e in edges)


async def test_money_and_lines(seeded: GraphQLClient) -> None:
    data = await seeded.execute(
        "{ orders(first: 5) { edges { node { total { amount currency formatted } "
        "lines { quantity unitPrice { amount } subtotal { amount } } } } } }"
    )
    for edge in data["orders"]["edges"]:
        order = edge["node"]
        assert order["total"]["amount"] == sum(line["subtotal"]["amount"] for line in order["lines"])
        for line in order["lines"]:
            assert line["subtotal"]["amount"] == line["unitPrice"]["amount"] * line["quantity"]
        assert order["total"]["formatted"].startswith("$")
