"""Abuse limits: depth, aliases, tokens, directives, cost, introspection, suggestions and masking.

Every refusal is a request error (400 for `application/graphql-response+json` clients) with one coded error, no
`data`, and not a single SQL statement run.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from graphql import build_schema as build_sdl_schema
from graphql import get_introspection_query, parse

from gateway.documents import Documents
from gateway.limits import Limits
from gateway.limits.cost import operation_cost
from schema import build_schema
from tests.conftest import GraphQLClient, app_settings_for, serve_in_process

SECRET = "a-production-secret-of-at-least-32-characters"
ACCEPT = {"accept": "application/graphql-response+json"}
GRAPHIQL_INTROSPECTION = get_introspection_query(
    descriptions=True,
    specified_by_url=True,
    directive_is_repeatable=True,
    schema_description=True,
    input_value_deprecation=True,
)
"""What GraphiQL sends (graphql-js's query with every option): 15 levels deep, under the token limit."""


@pytest.fixture
async def production(sqlite_url: str, tmp_path: Path) -> AsyncIterator[GraphQLClient]:
    settings = app_settings_for(sqlite_url, tmp_path, GATEWAY_ENV="production", GATEWAY_JWT_SECRET=SECRET)
    async with serve_in_process(settings) as client:
        yield client


@pytest.fixture
async def development(sqlite_url: str, tmp_path: Path) -> AsyncIterator[GraphQLClient]:
    async with serve_in_process(app_settings_for(sqlite_url, tmp_path)) as client:
        yield client


async def post(client: GraphQLClient, query: str, variables: dict[str, object]) -> httpx.Response:
    return await client.http.post("/graphql", json={"query": query, "variables": variables or None}, headers=ACCEPT)


async def refused(client: GraphQLClient, query: str, code: str, **variables: object) -> dict[str, Any]:
    """Send `query`; assert a 400 with one error coded `code`, no data and no SQL; return the error."""
    client.sql.reset()
    response = await post(client, query, variables)
    body = response.json()
    assert response.status_code == 400, body
    assert "data" not in body, body
    assert [error["extensions"]["code"] for error in body["errors"]] == [code], body
    assert client.sql.count == 0, client.sql.statements
    error: dict[str, Any] = body["errors"][0]
    return error


async def accepted(client: GraphQLClient, query: str, **variables: object) -> dict[str, Any]:
    response = await post(client, query, variables)
    body = response.json()
    assert response.status_code == 200, body
    assert "errors" not in body, body
    data: dict[str, Any] = body["data"]
    return data


CYCLE = ("orders", "edges", "node", "customer")  # Query.orders, OrderConnection.edges, OrderEdge.node, Order.customer
LEAVES = ("totalCount", "cursor", "number", "name")  # a leaf of the type each of them returns


def nested(levels: int) -> str:
    """A query `levels` deep (at least 3): `{ orders { edges { ...Deep } } }`, the rest inside the fragment."""
    fields = [CYCLE[i % 4] for i in range(levels - 1)] + [LEAVES[(levels - 2) % 4]]
    inner = " { ".join(fields[2:]) + " }" * (levels - 3)
    return f"{{ orders {{ edges {{ ...Deep }} }} }} fragment Deep on OrderEdge {{ {inner} }}"


def test_nested_builds_queries_of_the_asked_depth() -> None:
    from gateway.limits.depth import operation_depth
    from gateway.limits.fragments import fragments_of

    for levels in range(3, 16):
        document = parse(nested(levels))
        operation = document.definitions[0]
        assert operation_depth(operation, fragments_of(document)) == levels  # type: ignore[arg-type]
        assert not Documents(build_schema()._schema, limits=Limits(max_depth=100)).get(nested(levels)).errors


async def test_depth_through_fragments(production: GraphQLClient) -> None:
    await accepted(production, nested(10))
    error = await refused(production, nested(11), "MAX_DEPTH_EXCEEDED")
    assert error["message"] == "The operation is 11 levels deep; the limit is 10"


def aliased(count: int) -> str:
    """`count` aliases, most of them in a fragment spread twice."""
    in_fragment = count // 2
    own = " ".join(f"o{i}: __typename" for i in range(count - 2 * in_fragment))
    fragment = " ".join(f"f{i}: __typename" for i in range(in_fragment))
    operation = f"{{ {own} products {{ ...F }} other: products {{ ...F }} }}"
    return f"{operation} fragment F on ProductConnection {{ {fragment} }}"


async def test_aliases_through_fragments(production: GraphQLClient) -> None:
    await accepted(production, aliased(14))  # plus `other:`: 15
    error = await refused(production, aliased(15), "MAX_ALIASES_EXCEEDED")
    assert error["message"] == "The operation uses 16 aliases; the limit is 15"


def spreads(tokens: int) -> str:
    """A document of exactly `tokens` tokens, mostly `...F` (many equal fields would trip graphql-core's own
    budget for comparing overlapping fields first)."""
    head, count = ("query", (tokens - 10) // 2) if tokens % 2 == 0 else ("query Q", (tokens - 11) // 2)
    return head + " {" + " ...F" * count + " } fragment F on Query { __typename }"


async def test_tokens(production: GraphQLClient) -> None:
    await accepted(production, spreads(2_000))
    error = await refused(production, spreads(2_001), "MAX_TOKENS_EXCEEDED")
    assert error["message"] == "The document has more than 2000 tokens; the limit is 2000"
    await accepted(production, "# a comment\n" * 2_000 + spreads(2_000))  # comments have a budget of their own
    error = await refused(production, "# a comment\n" * 2_001 + "{ __typename }", "MAX_TOKENS_EXCEEDED")
    assert error["message"] == "The document has more than 2000 comments; the limit is 2000"


def directed(count: int) -> str:
    """`count` directives: on a spread and an inline fragment, the rest in the fragment spread twice."""
    in_fragment, extra = divmod(count - 2, 2)
    fragment = " __typename @include(if: true)" * in_fragment
    return (
        f"query Q($yes: Boolean = true) {{ ...F @include(if: $yes) ... @skip(if: false) {{ ...F }}"
        f"{' __typename @skip(if: false)' * extra} }} fragment F on Query {{{fragment} }}"
    )


async def test_directives_through_fragments(production: GraphQLClient) -> None:
    await accepted(production, directed(50))
    error = await refused(production, directed(51), "MAX_DIRECTIVES_EXCEEDED")
    assert error["message"] == "The operation uses 51 directives; the limit is 50"


def nested_connections(inner: str) -> str:
    variables = "($n: Int)" if inner == "$n" else ""
    return f"""query Q{variables} {{ customers(first: 100) {{ edges {{ node {{
        orders(first: {inner}) {{ edges {{ node {{ number }} }} }} }} }} }} }}"""


async def test_cost_multiplies_nested_connections(client: GraphQLClient) -> None:
    # 1 + 100 * (edges + node + orders(1 + m * (edges + node))) = 1 + 100 * (3 + 2m): 9,901 for 48, 10,101 for 49
    await accepted(client, nested_connections("48"))
    error = await refused(client, nested_connections("49"), "COST_LIMIT_EXCEEDED")
    assert error["extensions"] == {"code": "COST_LIMIT_EXCEEDED", "cost": 10_101, "maxCost": 10_000}
    assert error["message"] == "The operation costs 10101; the limit is 10000"

    await accepted(client, nested_connections("$n"), n=48)
    error = await refused(client, nested_connections("$n"), "COST_LIMIT_EXCEEDED", n=49)
    assert error["extensions"]["cost"] == 10_101
    # without `first`, a connection counts as a page of 20: 1 + 100 * 43
    await accepted(client, nested_connections("$n"))


async def test_cost_of_nodes_is_per_id(client: GraphQLClient) -> None:
    query = """query($ids: [ID!]!) { nodes(ids: $ids) { ... on Customer {
        orders(first: 100) { edges { node { customer { name } } } } } } }"""
    # 1 + len(ids) * (1 + 100 * 3)
    await accepted(client, query, ids=["Q3VzdG9tZXI6MQ"] * 33)
    error = await refused(client, query, "COST_LIMIT_EXCEEDED", ids=["Q3VzdG9tZXI6MQ"] * 34)
    assert error["extensions"]["cost"] == 1 + 34 * 301


async def test_cost_limit_is_configurable(store_url: str, tmp_path: Path) -> None:
    async with serve_in_process(app_settings_for(store_url, tmp_path, GATEWAY_MAX_COST=50)) as client:
        await accepted(client, "{ products(first: 24) { edges { node { sku } } } }")  # 1 + 24 * 2
        error = await refused(client, "{ products(first: 25) { edges { node { sku } } } }", "COST_LIMIT_EXCEEDED")
        assert error["extensions"] == {"code": "COST_LIMIT_EXCEEDED", "cost": 51, "maxCost": 50}


def test_operation_cost_is_public_and_follows_the_model() -> None:
    schema = build_sdl_schema("""
        type Query { items(first: Int, last: Int): ItemConnection! nodes(ids: [ID!]!): [Item]! item: Item }
        type ItemConnection { edges: [ItemEdge!]! totalCount: Int! }
        type ItemEdge { node: Item! }
        type Item { name: String! tags: [Tag!]! items(first: Int = 5): ItemConnection! }
        type Tag { label: String! }
    """)
    document = parse("""
        query A($n: Int = 3) { items(first: $n) { totalCount edges { node { name tags { label } } } } }
        query B { item { items { edges { node { __typename } } } } ...N }
        fragment N on Query { nodes(ids: ["1", "2"]) { ...on Item { tags { label } } } }
    """)
    assert operation_cost(schema, document, "A", {}) == 1 + 3 * 3
    assert operation_cost(schema, document, "A", {"n": 10}) == 1 + 10 * 3
    assert operation_cost(schema, document, "A", {"n": 1_000}) == 1 + 100 * 3  # the fields refuse more than 100
    assert operation_cost(schema, document, "B") == (1 + (1 + 5 * 2)) + (1 + 2 * 1)
    assert operation_cost(schema, document, "C") == 0


async def test_introspection_is_refused_in_production(production: GraphQLClient) -> None:
    await refused(production, GRAPHIQL_INTROSPECTION, "INTROSPECTION_DISABLED")
    query = '{ products { totalCount } t: __type(name: "Order") { name } }'
    error = await refused(production, query, "INTROSPECTION_DISABLED")
    assert error["message"] == "Introspection is disabled: `__type` cannot be queried"
    assert await accepted(production, "{ __typename }") == {"__typename": "Query"}


async def test_graphiql_introspects_in_development(development: GraphQLClient) -> None:
    data = await accepted(development, GRAPHIQL_INTROSPECTION)
    assert data["__schema"]["queryType"]["name"] == "Query"
    assert (await development.http.get("/graphql", headers={"accept": "text/html"})).status_code == 200


@pytest.mark.parametrize(
    ("query", "suggestion"),
    [
        ("{ produts { totalCount } }", "Did you mean 'products' or 'product'?"),
        ("{ products(frist: 2) { totalCount } }", "Did you mean 'first' or 'last'?"),
    ],
)
async def test_field_suggestions_only_in_development(
    production: GraphQLClient, development: GraphQLClient, query: str, suggestion: str
) -> None:
    hidden = await refused(production, query, "GRAPHQL_VALIDATION_FAILED")
    assert "Did you mean" not in hidden["message"]
    shown = await refused(development, query, "GRAPHQL_VALIDATION_FAILED")
    assert shown["message"].endswith(suggestion)
    assert shown["message"].startswith(hidden["message"])


async def test_enum_suggestions_of_variables_only_in_development(
    production: GraphQLClient, development: GraphQLClient
) -> None:
    query = "query($s: OrderStatus) { orders(filter: {status: $s}) { totalCount } }"
    hidden = await refused(production, query, "BAD_USER_INPUT", s="PAIDD")
    assert "PAIDD" in hidden["message"]
    assert "Did you mean" not in hidden["message"]
    shown = await refused(development, query, "BAD_USER_INPUT", s="PAIDD")
    assert "Did you mean the enum value 'PAID'?" in shown["message"]


async def test_unexpected_errors_are_masked_in_production(
    production: GraphQLClient, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(*_args: object) -> object:
        raise RuntimeError("password=hunter2 at db-7.internal")

    monkeypatch.setattr("schema.product.queries.products_statement", broken)
    with caplog.at_level(logging.ERROR, logger="gateway.errors"):
        response = await production.post("{ products { totalCount } }")
    body = response.json()
    assert response.status_code == 200, body
    assert body["data"] is None
    (error,) = body["errors"]
    error_id = error["extensions"]["errorId"]
    assert error["extensions"]["code"] == "INTERNAL_SERVER_ERROR"
    assert error["message"] == f"Internal server error (id {error_id})"
    assert "hunter2" not in response.text
    (record,) = [r for r in caplog.records if error_id in r.getMessage()]
    assert record.exc_info is not None
    assert "hunter2" in str(record.exc_info[1])


async def test_development_shows_unexpected_error_messages(
    development: GraphQLClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*_args: object) -> object:
        raise RuntimeError("a bug with details")

    monkeypatch.setattr("schema.product.queries.products_statement", broken)
    response: httpx.Response = await development.post("{ products { totalCount } }")
    (error,) = response.json()["errors"]
    assert error["message"] == "a bug with details"
    assert error["extensions"]["code"] == "INTERNAL_SERVER_ERROR"
    assert "errorId" in error["extensions"]


def test_limits_are_checked_once_per_document() -> None:
    documents = Documents(build_schema()._schema)
    first = documents.get(nested(11))
    assert documents.get(nested(11)) is first
    assert documents.misses == 1
    assert [e.extensions for e in first.errors] == [{"code": "MAX_DEPTH_EXCEEDED"}]
