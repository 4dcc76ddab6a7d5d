"""Every relation resolves through per-request loaders: statement counts do not grow with the page size."""

from __future__ import annotations

import pytest

from integrations.store.session import StoreSession
from resolvers.loaders import observe_batches
from resolvers.seed import SeedSize, seed
from schema.ids import encode_cursor, encode_id
from tests.conftest import GraphQLClient

Q1 = """
query Q1($first: Int!) {
  orders(first: $first) {
    totalCount
    edges { node { id number status total { amount currency formatted }
      customer { id name email }
      lines { quantity unitPrice { amount } subtotal { amount } product { id sku name price { formatted } } } } }
  }
}
"""


@pytest.fixture
async def seeded(client: GraphQLClient, store: StoreSession) -> GraphQLClient:
    await seed(store, SeedSize(customers=30, products=40, orders=120, lines_per_order=3))
    return client


@pytest.mark.parametrize("first", [1, 10, 50, 100])
async def test_orders_with_customer_lines_and_products_take_five_statements(seeded: GraphQLClient, first: int) -> None:
    seeded.sql.reset()
    data = await seeded.execute(Q1, {"first": first})

    edges = data["orders"]["edges"]
    assert len(edges) == first
    assert all(len(edge["node"]["lines"]) == 3 for edge in edges)
    # page + customers + lines + products, and one COUNT for totalCount
    assert seeded.sql.count <= 5, seeded.sql.statements
    assert sum("count(" in s.lower() for s in seeded.sql.statements) == 1


async def test_total_count_is_not_computed_unless_asked(seeded: GraphQLClient) -> None:
    seeded.sql.reset()
    await seeded.execute("{ orders(first: 50) { edges { node { number customer { name } } } } }")
    assert seeded.sql.count == 2, seeded.sql.statements
    assert not any("count(" in s.lower() for s in seeded.sql.statements)


async def test_nested_customer_orders_are_one_statement_per_level(seeded: GraphQLClient) -> None:
    query = """{ customers(first: 30) { edges { node { name
        orders(first: 2) { totalCount edges { node { number lines { product { sku } } } } } } } } }"""
    seeded.sql.reset()
    data = await seeded.execute(query)

    customers = data["customers"]["edges"]
    assert len(customers) == 30
    # customers page, orders pages (window function), order counts, lines, products
    assert seeded.sql.count == 5, seeded.sql.statements
    total = sum(c["node"]["orders"]["totalCount"] for c in customers)
    assert total == 120
    assert all(len(c["node"]["orders"]["edges"]) <= 2 for c in customers)


@pytest.mark.parametrize(
    "arguments",
    [
        "first: 3",
        "first: 2, after: $cursor",
        "last: 2",
        "last: 2, before: $cursor",
        "first: 0",
        "first: 3, after: $end",
    ],
)
async def test_each_customers_nested_page_matches_its_own_list(seeded: GraphQLClient, arguments: str) -> None:
    """The window-function page of a customer's orders equals the filtered root list for that customer, in either
    direction and from a cursor (the same cursor for every customer: it is an order's key)."""
    variables: dict[str, object] = {"cursor": encode_cursor(60), "end": encode_cursor(10_000)}
    used = {name: value for name, value in variables.items() if f"${name}" in arguments}
    declared = ", ".join(f"${name}: String" for name in used)
    page = "edges { cursor node { number } } pageInfo { hasNextPage hasPreviousPage startCursor endCursor }"
    data = await seeded.execute(
        f"query({declared}) {{ customers(first: 8) {{ edges {{ node {{ id orders({arguments}) {{ {page} }} }} }} }} }}"
        if used
        else f"{{ customers(first: 8) {{ edges {{ node {{ id orders({arguments}) {{ {page} }} }} }} }} }}",
        used,
    )
    pages = 0
    for edge in data["customers"]["edges"]:
        customer = edge["node"]
        root = await seeded.execute(
            f"query($c: ID!{', ' + declared if declared else ''}) "
            f"{{ orders({arguments}, filter: {{customerId: $c}}) {{ {page} }} }}",
            {"c": customer["id"], **used},
        )
        assert customer["orders"] == root["orders"]
        pages += bool(root["orders"]["edges"])
    assert pages or arguments in ("first: 0", "first: 3, after: $end"), "some customer has orders on that page"


async def test_node_and_nodes_batch_by_type(seeded: GraphQLClient) -> None:
    data = await seeded.execute("{ orders(first: 20) { edges { node { id customer { id } } } } }")
    ids = [e["node"]["id"] for e in data["orders"]["edges"]] + [
        e["node"]["customer"]["id"] for e in data["orders"]["edges"]
    ]
    seeded.sql.reset()
    result = await seeded.execute("query($ids: [ID!]!) { nodes(ids: $ids) { id __typename } }", {"ids": ids})
    assert [n["id"] for n in result["nodes"]] == ids
    assert seeded.sql.count == 2, seeded.sql.statements  # one per type


ORDER_SHAPE = "number customer { email } lines { quantity product { sku } }"


@pytest.mark.parametrize(
    ("selection", "statements"),
    [
        ("number", 1),
        ("number customer @skip(if: $yes) { name }", 1),
        ("number customer @include(if: $yes) { name }", 2),
        ("... on Order { lines { ...L } }", 3),  # the product under a named fragment inside an inline one
        ("lines @include(if: false) { product { sku } } customer { name }", 2),
        ("lines { quantity }", 2),
    ],
)
async def test_a_list_loads_what_its_items_select_and_nothing_else(
    seeded: GraphQLClient, selection: str, statements: int
) -> None:
    fragment = " fragment L on OrderLine { product { sku } }" if "...L" in selection else ""
    variables = "($yes: Boolean!)" if "$yes" in selection else ""
    seeded.sql.reset()
    data = await seeded.execute(
        f"query{variables} {{ orders(first: 20) {{ edges {{ node {{ {selection} }} }} }} }}{fragment}", {"yes": True}
    )
    assert len(data["orders"]["edges"]) == 20
    assert seeded.sql.count == statements, seeded.sql.statements


JOINED, LINES = "OrderWithCustomerByIdLoader", "OrderLinesByOrderIdLoader"


@pytest.mark.parametrize(
    ("selection", "other", "batches"),
    [
        ("number", None, ["OrderByIdLoader"]),
        ("number customer { name email }", None, [JOINED]),  # the orders joined with their customers
        ("number customer @skip(if: $yes) { name }", None, ["OrderByIdLoader"]),
        ("number customer @include(if: $yes) { name }", None, [JOINED]),
        ("... on Order { customer { name } } lines { quantity }", None, [JOINED, LINES]),
        ("customer { name } lines { product { sku } }", None, [JOINED, LINES, "ProductByIdLoader"]),
        (
            "customer { name orders(first: 2) { edges { node { number } } } }",
            None,
            [JOINED, "OrdersByCustomerIdLoader"],
        ),
        ("number lines { quantity }", "number customer { name } lines { quantity }", [JOINED, LINES]),  # one loader
    ],
)
async def test_orders_by_id_read_their_customers_in_the_same_statement(
    seeded: GraphQLClient, selection: str, other: str | None, batches: list[str]
) -> None:
    """`a: order(id:) {…} b: order(id:) {…}`: one statement per batch, each with both orders; when the operation selects
    an order's customer, the orders are read with their customers."""
    other = other or selection
    yes = ", $yes: Boolean!" if "$yes" in selection else ""
    ran: list[str] = []
    stop = observe_batches(lambda name, _size: ran.append(name))
    seeded.sql.reset()
    try:
        data = await seeded.execute(
            f"query($a: ID!, $b: ID!{yes}) {{ a: order(id: $a) {{ {selection} }} b: order(id: $b) {{ {other} }} }}",
            {"a": encode_id("Order", 7), "b": encode_id("Order", 8), "yes": True},
        )
    finally:
        stop()
    assert ran == batches
    assert seeded.sql.count == len(batches), seeded.sql.statements
    for name, pk, wanted in (("a", 7, selection), ("b", 8, other)):  # as the list gives it, its relations batched
        declared = "$after: String, $yes: Boolean!" if "$yes" in wanted else "$after: String"
        listed = await seeded.execute(
            f"query({declared}) {{ orders(first: 1, after: $after) {{ edges {{ node {{ {wanted} }} }} }} }}",
            {"after": encode_cursor(pk - 1), **({"yes": True} if "$yes" in wanted else {})},
        )
        assert data[name] == listed["orders"]["edges"][0]["node"]


async def test_a_listed_order_reads_as_the_same_order_fetched_alone(seeded: GraphQLClient) -> None:
    """Orders in a list get their relations loaded for them in batches; one fetched by ID loads its own."""
    listed = await seeded.execute(f"{{ orders(first: 5) {{ edges {{ node {{ id {ORDER_SHAPE} }} }} }} }}")
    for edge in listed["orders"]["edges"]:
        alone = await seeded.execute(
            f"query($id: ID!) {{ order(id: $id) {{ id {ORDER_SHAPE} }} }}", {"id": edge["node"]["id"]}
        )
        assert alone["order"] == edge["node"]


FIRST_ORDER = "{ orders(first: 1) { edges { node { id customer { id name email } } } } }"


async def test_a_field_after_a_write_reads_what_was_written(seeded: GraphQLClient) -> None:
    """Loaders keep read-only copies for the request; a committed write makes them forget, so a later mutation
    field of the same operation does not answer from a copy read before the write."""
    node = (await seeded.execute(FIRST_ORDER))["orders"]["edges"][0]["node"]
    document = """mutation($o: ID!, $c: ID!) {
      a: cancelOrder(input: {orderId: $o}) { order { customer { name } } }
      b: updateCustomer(input: {id: $c, name: "Renamed"}) { customer { name } userErrors { code } }
      c: cancelOrder(input: {orderId: $o}) { order { customer { name } } }
    }"""
    data = await seeded.execute(document, {"o": node["id"], "c": node["customer"]["id"]})
    assert data["a"]["order"]["customer"]["name"] == node["customer"]["name"] != "Renamed"
    assert data["b"] == {"customer": {"name": "Renamed"}, "userErrors": []}
    assert data["c"]["order"]["customer"]["name"] == "Renamed"


async def test_an_erasure_is_not_undone_by_a_later_field_of_the_same_operation(seeded: GraphQLClient) -> None:
    node = (await seeded.execute(FIRST_ORDER))["orders"]["edges"][0]["node"]
    document = """mutation($o: ID!, $c: ID!) {
      a: cancelOrder(input: {orderId: $o}) { order { customer { email } } }
      b: eraseCustomer(customerId: $c) { customer { name email } }
      c: cancelOrder(input: {orderId: $o}) { order { customer { name email } } }
    }"""
    data = await seeded.execute(document, {"o": node["id"], "c": node["customer"]["id"]})
    assert data["a"]["order"]["customer"]["email"] == node["customer"]["email"]
    assert data["c"]["order"]["customer"] == data["b"]["customer"] != node["customer"]
