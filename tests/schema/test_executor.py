"""The executor's short path answers exactly as graphql-core's executor does, errors included.

A small schema holds every kind of field the short path takes (non-null and nullable scalars, enums, custom
scalars, `__typename`, objects, lists of objects, prefetched relations) with values that break each one; the
gateway's own schema is then compared on wide and generated queries against a seeded store, and on guarded fields
read by a principal that may see some of them.
"""

from __future__ import annotations

import asyncio
import base64
import enum
from collections.abc import AsyncIterator, Awaitable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import graphql
import pytest
import strawberry
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis_graphql import nodes, queries
from strawberry.scalars import JSON
from strawberry.schema.config import StrawberryConfig
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

from integrations.store.session import StoreSession
from resolvers.seed import SeedSize, seed
from schema.executor import Executor
from schema.prefetched import prefetched
from tests.conftest import GraphQLClient, app_settings_for, serve_in_process, token_for
from tests.schema.test_schema_properties import PROPERTY, SCHEMA


class Kind(enum.Enum):
    BOOK = "book"
    TOOL = "tool"


@strawberry.type
class Price:
    amount: int
    currency: str

    @strawberry.field
    async def later_amount(self) -> int:
        await asyncio.sleep(0)
        return self.amount


@strawberry.interface
class Named:
    name: str


@strawberry.type
class Maker(Named):  # implements an interface: Strawberry gives it an is_type_of check
    founded: int


@strawberry.type
class Item:
    name: str
    nickname: str | None
    count: int
    kind: Kind
    added: datetime
    price: Price
    discount: Price | None
    maker: Maker
    parts: list[Price]
    spares: list[Price | None] | None
    makers: list[Maker]
    gaps: list[Price | None]
    loaded_maker: strawberry.Private[Maker | None] = None

    @strawberry.field(graphql_type=Maker, metadata=prefetched("loaded_maker"))
    def made_by(self) -> Maker | Awaitable[Maker]:  # read directly when prefetched, else loaded
        if self.loaded_maker is not None:
            return self.loaded_maker
        return _load_maker(self.name)

    @strawberry.field(graphql_type=Maker | None, metadata=prefetched("loaded_maker"))
    def maybe_made_by(self) -> Maker | Awaitable[Maker | None] | None:
        if self.loaded_maker is not None:
            return self.loaded_maker
        return _load_maker(self.name)

    @strawberry.field
    def shout(self) -> str:
        return self.name.upper()

    @strawberry.field
    async def later(self) -> str:
        await asyncio.sleep(0)
        return f"later {self.name}"

    @strawberry.field
    def broken(self) -> str | None:
        raise ValueError("broken resolver")

    @strawberry.field
    def where(self, info: strawberry.Info) -> str:
        return f"{info.field_name} at {info.path.key} of {info.path.prev.key if info.path.prev else None}"

    @strawberry.field(graphql_type=str)
    def eventually(self) -> str | Awaitable[str]:  # a synchronous resolver handing back an awaitable
        return _later(self.name)

    @strawberry.field
    def missing(self) -> str:
        return None  # type: ignore[return-value]  # graphql-core's null check must still apply


async def _later(name: str) -> str:
    await asyncio.sleep(0)
    return f"eventually {name}"


async def _load_maker(name: str) -> Maker:
    await asyncio.sleep(0)
    return Maker(name=f"loaded for {name}", founded=1999)


def _price_later() -> asyncio.Future[Price]:
    future: asyncio.Future[Price] = asyncio.get_running_loop().create_future()
    future.set_result(Price(amount=9, currency="GBP"))
    return future


WHEN = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
FIVE = Price(amount=5, currency="USD")
GOOD = Item(
    name="a",
    nickname=None,
    count=1,
    kind=Kind.BOOK,
    added=WHEN,
    price=FIVE,
    discount=None,
    maker=Maker(name="m", founded=1900),
    parts=[FIVE, Price(amount=7, currency="EUR")],
    spares=None,
    makers=[Maker(name="m", founded=1900), Maker(name="n", founded=1950)],
    gaps=[FIVE],
)
FIELDS = (
    *("name", "nickname", "count", "kind", "added", "price", "discount", "maker"),
    *("parts", "spares", "makers", "gaps"),
)


def item(**changes: Any) -> Item:
    return Item(**({name: getattr(GOOD, name) for name in FIELDS} | changes))


ITEMS = {
    "good": [GOOD, item(name="b", nickname="bee", kind=Kind.TOOL)],
    "null-name": [GOOD, item(name=None)],
    "huge-count": [item(count=2**40)],
    "not-a-kind": [item(kind="spoon")],
    "not-a-date": [item(added="yesterday")],
    "wrong-type": [item(count="three")],
    "null-price-amount": [item(price=Price(amount=None, currency="USD"))],  # type: ignore[arg-type]
    "null-price": [GOOD, item(price=None)],
    "discounted": [item(discount=FIVE), GOOD],
    "null-discount-amount": [item(discount=Price(amount=None, currency="USD"))],  # type: ignore[arg-type]
    "maker-not-a-maker": [item(maker=FIVE)],
    "maker-with-bad-year": [item(maker=Maker(name="m", founded=2**40))],
    "prefetched": [item(loaded_maker=Maker(name="p", founded=2000)), GOOD],
    "prefetched-bad-year": [item(loaded_maker=Maker(name="p", founded=2**40))],
    "no-parts": [item(parts=[], makers=[])],
    "null-part": [GOOD, item(parts=[FIVE, None])],
    "part-with-null-amount": [item(parts=[FIVE, Price(amount=None, currency="USD")])],  # type: ignore[arg-type]
    "part-not-a-price": [item(parts=[FIVE, Maker(name="x", founded=1)])],
    "parts-a-tuple": [item(parts=(FIVE,))],
    "spares": [item(spares=[None, FIVE, Price(amount=None, currency="USD")])],  # type: ignore[arg-type]
    "makers-not-makers": [item(makers=[Maker(name="m", founded=1), FIVE])],
    "maker-list-bad-year": [item(makers=[Maker(name="m", founded=1), Maker(name="y", founded=2**40)])],
    "gap-with-null-amount": [item(gaps=[Price(amount=None, currency="USD"), FIVE])],  # type: ignore[arg-type]
    "awaitable-part": [],  # these two are built per request: a future needs the running loop,
    "parts-a-generator": [],  # and a generator is read once
}


@strawberry.type
class Query:
    @strawberry.field
    def items(self, case: str) -> list[Item]:
        return _items(case)

    @strawberry.field
    def maybe_items(self, case: str) -> list[Item | None] | None:
        return list(_items(case))


def _items(case: str) -> list[Item]:
    if case == "awaitable-part":
        return [item(parts=[FIVE, _price_later()])]
    if case == "parts-a-generator":
        return [item(parts=(price for price in (FIVE, Price(amount=8, currency="JPY"))))]
    return ITEMS[case]


def schemas() -> tuple[strawberry.Schema, strawberry.Schema]:
    short = strawberry.Schema(Query, execution_context_class=Executor)
    reference = strawberry.Schema(Query, execution_context_class=StrawberryGraphQLCoreExecutionContext)
    return short, reference


SELECTIONS = [
    "{ name nickname count kind added __typename }",
    "{ later name shout count }",
    "{ n: name name n2: name ... on Item { count kind } ...F price { amount currency __typename } }",
    "{ name @skip(if: $yes) count @include(if: $yes) kind @include(if: false) nickname }",
    "{ broken name price { amount } }",
    "{ price { amount } discount { currency amount } maker { name founded __typename } name }",
    "{ maker { ... on Named { name } ... on Maker { founded } } p: price { c: currency } price { amount } }",
    "{ discount { amount } later count }",
    "{ where w: where eventually name }",
    "{ name missing }",
    "{ shout broken where }",
    "{ parts { amount currency } name }",
    "{ spares { amount } makers { name founded __typename } count }",
    "{ madeBy { name } parts { __typename amount } }",
    "{ makers { ... on Named { name } } madeBy { founded } later }",
    "{ gaps { amount } maybeMadeBy { name } parts { laterAmount amount } }",
]


@pytest.mark.parametrize("case", sorted(ITEMS))
@pytest.mark.parametrize("selection", SELECTIONS)
@pytest.mark.parametrize("field", ["items", "maybeItems"])
async def test_short_path_answers_as_graphql_core(case: str, selection: str, field: str) -> None:
    variables = "($yes: Boolean!)" if "$yes" in selection else ""
    fragment = " fragment F on Item { added }" if "...F" in selection else ""
    document = f'query{variables} {{ {field}(case: "{case}") {selection} }}{fragment}'
    short, reference = schemas()
    expected = await reference.execute(document, variable_values={"yes": True})
    answered = await short.execute(document, variable_values={"yes": True})
    assert all(error.path for error in expected.errors or []), expected.errors  # executed, not refused
    assert answered.data == expected.data
    assert [error.formatted for error in answered.errors or []] == [error.formatted for error in expected.errors or []]
    if expected.data is not None and expected.data[field] is not None:
        assert answered.data is not None
        for got, want in zip(answered.data[field], expected.data[field], strict=True):
            assert list(got or ()) == list(want or ())  # the same keys in the same order


async def test_errors_leave_the_short_path_to_graphql_core() -> None:
    short, _reference = schemas()
    result = await short.execute('{ items(case: "null-name") { count name } }')
    assert result.data is None
    assert result.errors is not None
    assert [error.message for error in result.errors] == ["Cannot return null for non-nullable field Item.name."]
    assert result.errors[0].path == ["items", 1, "name"]


@pytest.fixture
async def uncached(store_url: str, tmp_path: Path, store: StoreSession) -> AsyncIterator[GraphQLClient]:
    """The app on a seeded store, without the response cache: every request executes."""
    await seed(store, SeedSize(customers=6, products=8, orders=12, lines_per_order=2))
    async with serve_in_process(app_settings_for(store_url, tmp_path, GATEWAY_RESPONSE_CACHE=False)) as client:
        yield client


async def answers(
    client: GraphQLClient,
    document: str,
    variables: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[Any, Any]:
    """The app's answer with the short path, then with graphql-core's executor. The short path answers twice, the
    second time from the plans kept from the first (`SharedPlans`), and both answers must be the same."""
    schema = client.app.state.schema
    assert schema.execution_context_class is Executor
    answered = (await client.post(document, variables, headers=headers)).json()
    assert (await client.post(document, variables, headers=headers)).json() == answered
    schema.execution_context_class = StrawberryGraphQLCoreExecutionContext
    try:
        expected = (await client.post(document, variables, headers=headers)).json()
    finally:
        schema.execution_context_class = Executor
    return answered, expected


WIDE = [
    # the benchmark's Q1, and Q2 with an alias, a fragment and __typename
    """{ orders(first: 12) { totalCount edges { cursor node { id number status createdAt total { amount currency
       formatted } customer { id name email } lines { quantity unitPrice { amount } subtotal { amount }
       product { id sku name price { amount } } } } } pageInfo { hasNextPage endCursor } } }""",
    """query($id: ID!) { o: order(id: $id) { ...O __typename customer { __typename name } } }
       fragment O on Order { id number status total { amount currency } }""",
    """{ customers(first: 6) { edges { node { id name email createdAt orders(first: 2) { totalCount
       edges { node { number lines { product { sku stock } } } } } } } } }""",
    "{ products(first: 8) { edges { node { id sku name description stock price { amount currency } } } } }",
]


@pytest.mark.parametrize("document", WIDE)
async def test_gateway_answers_with_data_are_the_same(uncached: GraphQLClient, document: str) -> None:
    order = await uncached.execute("{ orders(first: 1) { edges { node { id } } } }")
    answered, expected = await answers(uncached, document, {"id": order["orders"]["edges"][0]["node"]["id"]})
    assert "errors" not in expected, expected
    assert expected["data"]
    assert answered == expected


async def test_guarded_fields_are_refused_as_graphql_core_refuses_them(uncached: GraphQLClient) -> None:
    """`Customer.email` (customers:read or the owner) read by a principal with orders:read only, who owns one of
    the customers: the short path reads the owner's email and leaves the refusals to the guard, at their paths."""
    document = "{ orders(first: 12) { edges { node { number customer { id name email } lines { quantity } } } } }"
    owner = (await uncached.execute(document))["orders"]["edges"][0]["node"]["customer"]["id"]
    token = token_for(uncached.settings, subject="buyer", roles=("customer",), scopes=("orders:read",), customer=owner)
    answered, expected = await answers(uncached, document, headers={"Authorization": f"Bearer {token}"})
    refused = [error["path"] for error in expected["errors"]]
    assert {error["extensions"]["code"] for error in expected["errors"]} == {"FORBIDDEN"}
    emails = [edge["node"]["customer"]["email"] for edge in expected["data"]["orders"]["edges"]]
    assert emails[0] is not None  # both kinds are in the answer
    assert 0 < len(refused) == emails.count(None)
    assert answered == expected


def gid(type_name: str, pk: int) -> str:
    return base64.urlsafe_b64encode(f"{type_name}:{pk}".encode()).decode().rstrip("=")


MEANINGFUL: dict[str, st.SearchStrategy[graphql.ValueNode]] = {
    # Values that find rows (the seeded ids, short pages) so that answers carry data, with a few that do not.
    "ID": st.one_of(
        st.builds(gid, st.sampled_from(["Customer", "Product", "Order"]), st.integers(min_value=1, max_value=12)),
        st.just("nope"),
    ).map(nodes.String),
    "Int": st.integers(min_value=0, max_value=5).map(nodes.Int),
    "String": st.sampled_from(["a", "e", "example.com", "", "PAID", "USD"]).map(nodes.String),
    "DateTime": st.datetimes(timezones=st.just(UTC)).map(lambda value: nodes.String(value.isoformat())),
}


@settings(PROPERTY, max_examples=60)
@given(document=queries(SCHEMA, custom_scalars=MEANINGFUL))
async def test_generated_queries_are_answered_the_same(uncached: GraphQLClient, document: str) -> None:
    answered, expected = await answers(uncached, document)
    assert answered == expected, document


@strawberry.type
class Parcel:
    label: str
    contents: JSON
    total: Price


def _contents() -> asyncio.Future[dict[str, int]]:
    """An awaitable that, unlike a coroutine, may go unawaited when a document does not select it."""
    future: asyncio.Future[dict[str, int]] = asyncio.get_running_loop().create_future()
    future.set_result({"x": 1})
    return future


@strawberry.type
class DeferQuery:
    @strawberry.field
    def parcel(self) -> Parcel:
        return Parcel(label="a", contents=_contents(), total=FIVE)  # type: ignore[arg-type]  # awaited, not sent


async def delivered(execution_context_class: type[Any], document: str) -> list[Any]:
    """Every payload of an operation, incremental ones included, as plain data."""
    schema = strawberry.Schema(
        DeferQuery,
        execution_context_class=execution_context_class,
        config=StrawberryConfig(enable_experimental_incremental_execution=True),
    )
    result = await schema.execute(document)
    if not hasattr(result, "initial_result"):
        return [result.data, [error.formatted for error in result.errors or []]]
    initial = result.initial_result
    payloads: list[Any] = [initial.data, initial.errors, [(p.id, p.path, p.label) for p in initial.pending or []]]
    async for subsequent in result.subsequent_results:  # type: ignore[attr-defined]
        payloads.append([(item.data, item.errors) for item in subsequent.incremental or []])
        payloads.append([(done.id, done.errors) for done in subsequent.completed or []])
    return payloads


@pytest.mark.parametrize(
    "document",
    [
        "{ parcel { label contents total { amount } } }",
        '{ parcel { total { amount } ... @defer(label: "A") { total { currency } } } }',
        '{ parcel { label ... @defer(label: "A") { total { amount ... @defer(label: "B") { currency } } } } }',
    ],
)
async def test_deferred_and_awaited_fields_are_delivered_as_graphql_core_delivers_them(document: str) -> None:
    expected = await delivered(StrawberryGraphQLCoreExecutionContext, document)
    assert await delivered(Executor, document) == expected


def test_resolve_infos_get_helpers_of_the_executor_which_cannot_have_others_set() -> None:
    """The helpers are made per resolve info (kept on the executor, they made a reference cycle with it); a later
    graphql-core that replaced them would not be honoured, so it fails loudly."""
    executor = Executor.build(graphql.build_schema("type Query { a: Int }"), graphql.parse("{ a }"))
    assert isinstance(executor, Executor)
    helpers = executor.async_helpers
    assert helpers.track.__self__ is executor  # type: ignore[attr-defined]
    assert helpers.gather.__self__ is executor  # type: ignore[attr-defined]
    with pytest.raises(AttributeError, match="cannot be replaced"):
        executor.async_helpers = helpers
