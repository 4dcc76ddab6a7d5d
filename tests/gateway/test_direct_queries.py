"""Valid queries run on graphql-core directly (`schema.execution`), everything else through `Schema.execute`, and
both give the same answers.

The direct path skips Strawberry's extensions, so each request below is sent to one app twice, once with the direct
path and once without, and the two answers (status, headers that matter, body) must be equal. The cases are those
where an extension or the error processing around execution does something: field errors, refusals by the guard,
variables that do not coerce (with the suggestion stripped), the cost limit, several operations, mutations.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.documents import Documents
from gateway.endpoint import GraphQLEndpoint
from integrations.store.session import StoreSession
from resolvers.loaders import observe_batches
from resolvers.seed import SeedSize, seed
from schema.executor import SharedPlans
from schema.ids import encode_id
from tests.conftest import ANONYMOUS, GraphQLClient, app_settings_for, serve_in_process

ORDER = """query One($id: ID!) { order(id: $id) { id number status total { amount currency formatted }
  customer { id name email } lines { quantity product { sku } } } }"""
PAGE = """query Page($first: Int, $status: OrderStatus) { orders(first: $first, filter: {status: $status}) {
  totalCount pageInfo { hasNextPage endCursor } edges { cursor node { number customer { name } } } } }"""
NODES = "query Nodes($ids: [ID!]!) { nodes(ids: $ids) { __typename id ... on Product { sku stock } } }"
TWO = "query A { products(first: 1) { totalCount } } query B { customers(first: 1) { totalCount } }"
UPDATE = """mutation Update($id: ID!, $stock: Int!) { updateProduct(input: {id: $id, stock: $stock}) {
  product { sku stock } userErrors { field message code } } }"""
SKIPPED = "{ a: products(first: 1) @skip(if: true) { totalCount } b: __typename @include(if: false) }"
OVER_COST = "{ customers(first: 100) { edges { node { orders(first: 100) { edges { node { number } } } } } } }"
GET_MUTATION = 'mutation { updateProduct(input: {id: "x", stock: 1}) { userErrors { code } } }'
PREFLIGHTED = {"GraphQL-Require-Preflight": "1"}

Request = tuple[str, dict[str, Any]]  # (method, keyword arguments of httpx's request)


def post(
    query: str, variables: dict[str, Any] | None = None, headers: dict[str, str] | None = None, **extra: Any
) -> Request:
    return "POST", {"json": {"query": query, "variables": variables, **extra}, "headers": headers or {}}


def get(query: str) -> Request:
    return "GET", {"params": {"query": query}, "headers": PREFLIGHTED}


CASES: dict[str, tuple[Request, bool]] = {
    # name: (request, whether it runs directly)
    "one order": (post(ORDER, {"id": encode_id("Order", 3)}), True),
    "missing order": (post(ORDER, {"id": encode_id("Order", 999)}), True),
    "id of another type": (post(ORDER, {"id": encode_id("Customer", 1)}), True),
    "malformed id": (post(ORDER, {"id": "not-an-id"}), True),
    "page": (post(PAGE, {"first": 4}), True),
    "page over the cap": (post(PAGE, {"first": 101}), True),
    "enum variable that does not coerce": (post(PAGE, {"first": 2, "status": "PAIDD"}), True),
    "missing variable": (post(ORDER, {}), True),
    "nodes": (post(NODES, {"ids": [encode_id("Product", 1), encode_id("Customer", 2), "junk"]}), True),
    "anonymous reads a private field": (post(ORDER, {"id": encode_id("Order", 3)}, ANONYMOUS), True),
    "skip and include": (post(SKIPPED), True),
    "introspection (refused in production)": (post('{ __type(name: "Money") { name fields { name } } }'), False),
    "get": (get("{ products(first: 2) { edges { node { sku } } } }"), True),
    "named one of two": (post(TWO, operationName="B"), True),
    "unnamed one of two": (post(TWO), False),
    "unknown operation name": (post(TWO, operationName="C"), False),
    "over the cost limit": (post(OVER_COST), False),
    "invalid": (post("{ products(first: 1) { nope } }"), False),
    "syntax error": (post("{ products("), False),
    "mutation": (post(UPDATE, {"id": encode_id("Product", 2), "stock": 7}), False),
    "mutation with user errors": (post(UPDATE, {"id": encode_id("Product", 2), "stock": -1}), False),
    "mutation over get": (get(GET_MUTATION), False),
}


@pytest.fixture
async def client(store_url: str, tmp_path: Path, store: StoreSession) -> AsyncIterator[GraphQLClient]:
    """Production settings (suggestions hidden) with a low cost limit; no response cache: every request runs."""
    await seed(store, SeedSize(customers=5, products=5, orders=8, lines_per_order=2))
    settings = app_settings_for(
        store_url,
        tmp_path,
        GATEWAY_ENV="production",
        GATEWAY_JWT_SECRET="direct-queries-test-secret-0123456789abcdef",
        GATEWAY_ANONYMOUS_SCOPES="orders:read",
        GATEWAY_RESPONSE_CACHE=False,
        GATEWAY_RATE_LIMIT=False,
        GATEWAY_MAX_COST=5_000,
    )
    async with serve_in_process(settings) as client:
        yield client


@contextmanager
def counted_strawberry_executions(client: GraphQLClient) -> Iterator[Callable[[], int]]:
    """How many operations went through `Schema.execute` (the real one, called through)."""
    schema = client.app.state.schema
    calls = 0
    execute = schema.execute

    async def counting(*args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        return await execute(*args, **kwargs)

    schema.execute = counting
    try:
        yield lambda: calls
    finally:
        del schema.execute


def comparable(response: httpx.Response) -> tuple[int, str | None, str | None, Any]:
    return response.status_code, response.headers.get("content-type"), response.headers.get("allow"), response.json()


@pytest.mark.parametrize("case", CASES)
async def test_both_paths_answer_alike(client: GraphQLClient, case: str) -> None:
    (method, arguments), direct = CASES[case]
    endpoint: GraphQLEndpoint = client.app.state.endpoint
    assert endpoint.direct_queries  # tracing is off

    answers = []
    for direct_queries in (True, False):
        endpoint.direct_queries = direct_queries
        with counted_strawberry_executions(client) as strawberry_runs:
            answers.append(await client.http.request(method, "/graphql", **arguments))
        assert strawberry_runs() == (0 if direct and direct_queries else 1), answers[-1].text

    assert comparable(answers[0]) == comparable(answers[1])
    assert answers[0].status_code < 500


async def test_suggestions_are_stripped_on_the_direct_path(client: GraphQLClient) -> None:
    (_method, arguments), _direct = CASES["enum variable that does not coerce"]
    response = await client.http.post("/graphql", **arguments)
    assert response.status_code == 200
    [error] = response.json()["errors"]
    assert "PAIDD" in error["message"]
    assert "Did you mean" not in error["message"]


def shared_plans(client: GraphQLClient, query: str) -> SharedPlans:
    documents: Documents = client.app.state.documents
    plans = documents.get(query).plans(None)
    assert plans is not None
    return plans


def memo_sizes(client: GraphQLClient) -> dict[str, list[tuple[int, int]]]:
    """Per document text: the sizes of each shared variant's memos (collected subfields, plans)."""
    documents: Documents = client.app.state.documents
    return {
        text: [(len(variant.subfields), len(variant.plans)) for variant in plans.variants.values()]
        for text, document in documents._entries.items()
        for plans in document._plans.values()
    }


async def test_plans_are_kept_across_requests_and_stop_growing(client: GraphQLClient) -> None:
    direct = [request for request, runs_directly in CASES.values() if runs_directly]
    for method, arguments in direct:
        await client.http.request(method, "/graphql", **arguments)
    first = memo_sizes(client)
    for _round in range(2):
        for method, arguments in direct:
            await client.http.request(method, "/graphql", **arguments)

    assert memo_sizes(client) == first
    assert sum(1 for variants in first.values() if variants) >= 6  # ORDER, PAGE, NODES, SKIPPED, TWO, the GET
    assert all(subfields + plans > 0 for variants in first.values() for subfields, plans in variants)


async def test_a_kept_plan_asks_each_requests_principal(client: GraphQLClient) -> None:
    """The guard on `Customer.email` is asked per request, whoever planned the operation first."""
    variables: dict[str, object] = {"id": encode_id("Order", 3)}
    for headers in ({}, ANONYMOUS, {}, ANONYMOUS):
        body = (await client.post(ORDER, variables, headers=headers)).json()
        email = body["data"]["order"]["customer"]["email"]
        if headers:
            assert email is None
            assert [(e["path"], e["extensions"]["code"]) for e in body["errors"]] == [
                (["order", "customer", "email"], "FORBIDDEN")
            ]
        else:
            assert "errors" not in body
            assert email.endswith("@example.com")


ORDER_3 = encode_id("Order", 3)
INCLUDED = f"""query Included($withCustomer: Boolean!, $skipLines: Boolean = false) {{ order(id: "{ORDER_3}") {{
  number customer @include(if: $withCustomer) {{ name }} lines @skip(if: $skipLines) {{ quantity }} }} }}"""


async def test_variables_of_directives_pick_their_own_plans(client: GraphQLClient) -> None:
    """Also the look-ahead (`schema.selection`), whose answers are kept with the plans: `order` reads the customer
    in the same statement only when it is included, and the lines are loaded only when not skipped."""
    answers: dict[tuple[bool, bool], Any] = {}
    batches: list[str] = []
    stop = observe_batches(lambda name, _size: batches.append(name))
    try:
        for with_customer, skip_lines in [(True, False), (False, False), (True, True), (False, True), (True, False)]:
            variables: dict[str, object] = {"withCustomer": with_customer, "skipLines": skip_lines}
            batches.clear()
            order = (await client.execute(INCLUDED, variables))["order"]
            assert ("customer" in order) is with_customer
            assert ("lines" in order) is not skip_lines
            answers.setdefault((with_customer, skip_lines), order)
            assert order == answers[(with_customer, skip_lines)]
            expected = ["OrderWithCustomerByIdLoader" if with_customer else "OrderByIdLoader"]
            assert sorted(batches) == sorted(expected + ([] if skip_lines else ["OrderLinesByOrderIdLoader"]))
    finally:
        stop()

    plans = shared_plans(client, INCLUDED)
    assert plans.variables == ("skipLines", "withCustomer")
    assert len(plans.variants) == 4


def test_queries_skip_only_the_extensions_known_to_have_nothing_to_do_for_them(client: GraphQLClient) -> None:
    """A new schema extension would be skipped for every valid query: adding one means deciding whether the direct
    path must do its work, or be off (as with tracing's operation span). This lists the ones decided."""
    extensions = client.app.state.schema.get_extensions()
    assert sorted(type(extension).__name__ for extension in extensions) == ["AuditLog", "PreparedDocuments"]
    assert not any(extension._implements_resolve() for extension in extensions)  # no resolve middleware skipped
