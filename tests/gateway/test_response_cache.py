"""The response cache through the real app: what is cached, headers, invalidation by writes, stampedes."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from json import dumps
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import update
from sqlmodel import col

from gateway.cache_policy import CachePolicy, Scope
from gateway.response_cache import CacheState, Produced, ResponseCache
from gateway.settings import load_settings
from integrations.cache.tagged.memory import MemoryTaggedStore
from integrations.store.models import Product
from integrations.store.session import StoreSession
from resolvers.seed import SeedSize, seed
from schema.ids import encode_id
from tests.conftest import ANONYMOUS, GraphQLClient, app_settings_for, serve_in_process, token_for
from tests.support.gateway_process import gateway_process
from tests.support.redis_server import run_redis_server

PRODUCT = "query Product($id: ID!) { product(id: $id) { id name stock } }"
PRODUCTS = "query Products { products(first: 10) { totalCount edges { node { id name } } } }"
CUSTOMER = "query Customer($id: ID!) { customer(id: $id) { name email } }"
CREATE_PRODUCT = """mutation Create($sku: String!, $name: String!) {
  createProduct(input: {sku: $sku, name: $name, price: {amount: 500, currency: "USD"}, stock: 10}) {
    product { id } userErrors { code }
  }
}"""
RENAME = """mutation Rename($id: ID!, $name: String!) {
  updateProduct(input: {id: $id, name: $name}) { product { name } userErrors { code } }
}"""


async def create_product(client: GraphQLClient, name: str = "Lamp") -> str:
    data = await client.execute(CREATE_PRODUCT, {"sku": f"SKU-{uuid.uuid4().hex[:8]}", "name": name})
    return str(data["createProduct"]["product"]["id"])


async def create_customer(client: GraphQLClient) -> str:
    data = await client.execute(
        'mutation { createCustomer(input: {name: "Ada", email: "ada@example.com"}) { customer { id } } }'
    )
    return str(data["createCustomer"]["customer"]["id"])


async def ask(
    client: GraphQLClient, query: str, variables: dict[str, Any] | None = None, **headers: str
) -> httpx.Response:
    return await client.http.post("/graphql", json={"query": query, "variables": variables}, headers=headers)


def cache(client: GraphQLClient) -> ResponseCache:
    response_cache: ResponseCache = client.app.state.response_cache
    return response_cache


async def test_a_repeated_query_is_a_hit_without_sql_and_says_so(client: GraphQLClient) -> None:
    product = await create_product(client)

    miss = await ask(client, PRODUCT, {"id": product})
    client.sql.reset()
    hit = await ask(client, PRODUCT, {"id": product})

    assert miss.headers["x-cache"] == "MISS"
    assert hit.headers["x-cache"] == "HIT"
    assert hit.content == miss.content
    assert client.sql.count == 0
    assert hit.headers["cache-control"] == "public, max-age=60"
    assert hit.headers["etag"] == miss.headers["etag"]
    assert int(hit.headers["age"]) >= 0
    assert "Accept" in hit.headers["vary"]


async def test_shared_answers_vary_by_credentials_too(client: GraphQLClient) -> None:
    """A PUBLIC entry is shared by principals with the same grants only: an HTTP cache in front must not hand a
    staff member's answer to an anonymous client, so it has to key on the credential headers as well."""
    staff = token_for(client.settings, subject="s", roles=["staff"], scopes=["customers:read"])
    query = "{ customers { totalCount } }"
    response = await ask(client, query, authorization=f"Bearer {staff}")
    assert response.headers["cache-control"].startswith("public")
    vary = {name.strip().lower() for name in response.headers["vary"].split(",")}
    assert {"accept", "authorization", "x-api-key"} <= vary


async def test_the_max_age_is_the_smallest_over_the_fields_touched(client: GraphQLClient) -> None:
    await create_product(client)
    response = await ask(client, "query Both { products(first: 1) { totalCount } orders(first: 1) { totalCount } }")

    assert response.headers["cache-control"] == "public, max-age=30"  # orders: 30, products: 60


async def test_mutations_introspection_and_unhinted_fields_are_not_cached(client: GraphQLClient) -> None:
    mutation = await client.http.post(
        "/graphql", json={"query": CREATE_PRODUCT, "variables": {"sku": "S-1", "name": "Lamp"}}
    )
    introspection = await ask(client, "query Types { __schema { types { name } } }")
    typename = await ask(client, "query Name { __typename }")

    for response in (mutation, introspection, typename):
        assert response.status_code == 200
        assert response.headers["x-cache"] == "BYPASS"
        assert response.headers["cache-control"] == "no-store"
        assert "etag" not in response.headers


async def test_results_with_errors_are_never_stored(client: GraphQLClient) -> None:
    missing = encode_id("Product", 999_999)
    bad_id = {"id": "not-a-global-id"}

    for _ in range(2):
        response = await ask(client, PRODUCT, bad_id)
        assert response.json()["errors"]
        assert response.headers["x-cache"] == "MISS"
        assert response.headers["cache-control"] == "no-store"
    assert cache(client).stats["stored"] == 0

    # A null without errors is a successful answer and is cached.
    await ask(client, PRODUCT, {"id": missing})
    assert (await ask(client, PRODUCT, {"id": missing})).headers["x-cache"] == "HIT"


async def test_private_fields_are_cached_per_principal_and_never_anonymously(client: GraphQLClient) -> None:
    customer = await create_customer(client)
    variables = {"id": customer}

    def staff(name: str) -> str:
        return "Bearer " + token_for(client.settings, subject=name, roles=["staff"], scopes=["customers:read"])

    anonymous = [await ask(client, CUSTOMER, variables, **ANONYMOUS) for _ in range(2)]
    alice = [await ask(client, CUSTOMER, variables, authorization=staff("alice")) for _ in range(2)]
    bob = await ask(client, CUSTOMER, variables, authorization=staff("bob"))

    assert [r.headers["x-cache"] for r in anonymous] == ["BYPASS", "BYPASS"]
    assert [r.headers["x-cache"] for r in alice] == ["MISS", "HIT"]
    assert bob.headers["x-cache"] == "MISS"
    assert alice[1].headers["cache-control"] == "private, max-age=60"
    assert "Authorization" in alice[1].headers["vary"]
    assert bob.json() == alice[1].json()


async def test_variables_are_keyed_canonically(client: GraphQLClient) -> None:
    product = await create_product(client)
    query = "query Two($id: ID!, $n: Int) { product(id: $id) { name } products(first: $n) { totalCount } }"

    json = {"content-type": "application/json"}
    body = {"query": query, "variables": {"id": product, "n": 1}}
    first = await client.http.post("/graphql", content=dumps(body), headers=json)
    body = {"variables": {"n": 1, "id": product}, "query": query}  # the same, in another order
    reordered = await client.http.post("/graphql", content=dumps(body), headers=json)
    different = await ask(client, query, {"id": product, "n": 2})

    assert first.status_code == 200, first.text
    assert (first.headers["x-cache"], reordered.headers["x-cache"], different.headers["x-cache"]) == (
        "MISS",
        "HIT",
        "MISS",
    )


async def test_formatting_does_not_split_the_cache(client: GraphQLClient) -> None:
    product = await create_product(client)
    await ask(client, PRODUCT, {"id": product})
    reformatted = "# same operation\nquery Product($id: ID!) {\n  product(id: $id) { id name stock }\n}"

    assert (await ask(client, reformatted, {"id": product})).headers["x-cache"] == "HIT"


async def test_an_update_invalidates_the_entity_and_the_lists_holding_it(client: GraphQLClient) -> None:
    product = await create_product(client, "Lamp")
    other = await create_product(client, "Chair")
    await ask(client, PRODUCT, {"id": product})
    await ask(client, PRODUCT, {"id": other})
    await ask(client, PRODUCTS)

    renamed = await client.execute(RENAME, {"id": product, "name": "Desk lamp"})
    assert renamed["updateProduct"]["product"]["name"] == "Desk lamp"

    fresh = await ask(client, PRODUCT, {"id": product})
    listing = await ask(client, PRODUCTS)
    untouched = await ask(client, PRODUCT, {"id": other})
    assert fresh.headers["x-cache"] == "MISS"
    assert fresh.json()["data"]["product"]["name"] == "Desk lamp"
    assert listing.headers["x-cache"] == "MISS"
    assert "Desk lamp" in listing.text
    assert untouched.headers["x-cache"] == "HIT"


ORDER_WITH_CUSTOMER = "query Order($id: ID!) { order(id: $id) { number customer { id name } } }"


async def test_an_order_read_with_its_customer_is_invalidated_by_either_and_not_by_new_rows(
    client: GraphQLClient, store: StoreSession
) -> None:
    """`order(id:)` reads the order joined with its customer: tagged with both rows, and with no listing."""
    await seed(store, SeedSize(customers=3, products=2, orders=4, lines_per_order=1))
    first, other = encode_id("Order", 1), encode_id("Order", 2)
    read = (await ask(client, ORDER_WITH_CUSTOMER, {"id": first})).json()["data"]["order"]
    other_customer = (await ask(client, ORDER_WITH_CUSTOMER, {"id": other})).json()["data"]["order"]["customer"]
    assert (await ask(client, ORDER_WITH_CUSTOMER, {"id": first})).headers["x-cache"] == "HIT"

    await create_customer(client)  # a new row of either table changes neither answer
    await create_product(client)
    assert (await ask(client, ORDER_WITH_CUSTOMER, {"id": first})).headers["x-cache"] == "HIT"

    renamed = await client.execute(
        'mutation($id: ID!) { updateCustomer(input: {id: $id, name: "Grace"}) { userErrors { code } } }',
        {"id": read["customer"]["id"]},
    )
    assert renamed["updateCustomer"]["userErrors"] == []
    fresh = await ask(client, ORDER_WITH_CUSTOMER, {"id": first})
    assert fresh.headers["x-cache"] == "MISS"
    assert fresh.json()["data"]["order"] == {**read, "customer": {**read["customer"], "name": "Grace"}}
    if other_customer["id"] != read["customer"]["id"]:
        assert (await ask(client, ORDER_WITH_CUSTOMER, {"id": other})).headers["x-cache"] == "HIT"


async def test_creating_an_entity_invalidates_lists_of_its_type(client: GraphQLClient) -> None:
    await create_product(client, "Lamp")
    before = (await ask(client, PRODUCTS)).json()["data"]["products"]["totalCount"]
    assert (await ask(client, PRODUCTS)).headers["x-cache"] == "HIT"

    await create_product(client, "Chair")

    after = await ask(client, PRODUCTS)
    assert after.headers["x-cache"] == "MISS"
    assert after.json()["data"]["products"]["totalCount"] == before + 1


async def test_placing_an_order_invalidates_the_stock_it_reserved(client: GraphQLClient) -> None:
    product = await create_product(client)
    customer = await create_customer(client)
    assert (await ask(client, PRODUCT, {"id": product})).json()["data"]["product"]["stock"] == 10
    place = """mutation Place($customer: ID!, $product: ID!) {
      placeOrder(input: {customerId: $customer, lines: [{productId: $product, quantity: 3}],
                         paymentMethod: "pm_card_visa", idempotencyKey: "k-1"}) { order { status } userErrors { code } }
    }"""
    placed = await client.execute(place, {"customer": customer, "product": product})
    assert placed["placeOrder"]["order"]["status"] == "PAID"

    after = await ask(client, PRODUCT, {"id": product})
    assert after.headers["x-cache"] == "MISS"
    assert after.json()["data"]["product"]["stock"] == 7


async def test_a_write_outside_any_request_invalidates_too(client: GraphQLClient) -> None:
    """The outbox worker and webhooks commit outside a GraphQL request: the change feed announces them."""
    product = await create_product(client, "Lamp")
    assert (await ask(client, PRODUCT, {"id": product})).headers["x-cache"] == "MISS"
    services = client.app.state.services
    async with services.sessionmaker() as session, session.begin():
        await session.execute(update(Product).where(col(Product.name) == "Lamp").values(name="Floor lamp"))
    await client.app.state.changes.drain()

    after = await ask(client, PRODUCT, {"id": product})
    assert after.headers["x-cache"] == "MISS"
    assert after.json()["data"]["product"]["name"] == "Floor lamp"


async def test_get_with_a_matching_etag_is_304(client: GraphQLClient) -> None:
    product = await create_product(client)
    params = {"query": PRODUCT, "variables": f'{{"id": "{product}"}}'}
    preflight = {"GraphQL-Require-Preflight": "1"}  # CSRF prevention
    first = await client.http.get("/graphql", params=params, headers=preflight)
    etag = first.headers["etag"]

    not_modified = await client.http.get("/graphql", params=params, headers=preflight | {"if-none-match": etag})
    weak = await client.http.get("/graphql", params=params, headers=preflight | {"if-none-match": f'"other", W/{etag}'})
    changed = await client.http.get("/graphql", params=params, headers=preflight | {"if-none-match": '"other"'})

    assert first.status_code == 200
    assert not_modified.status_code == 304
    assert not_modified.content == b""
    assert not_modified.headers["etag"] == etag
    assert not_modified.headers["cache-control"] == "public, max-age=60"
    assert weak.status_code == 304
    assert changed.status_code == 200
    assert changed.content == first.content


async def test_a_client_asking_for_no_cache_gets_a_fresh_execution(client: GraphQLClient) -> None:
    product = await create_product(client)
    await ask(client, PRODUCT, {"id": product})

    refreshed = await ask(client, PRODUCT, {"id": product}, **{"cache-control": "no-cache"})

    assert refreshed.headers["x-cache"] == "MISS"


async def test_concurrent_misses_execute_once(client: GraphQLClient) -> None:
    product = await create_product(client)
    await ask(client, PRODUCT, {"id": encode_id("Product", 123_456)})  # warm the connection pool
    client.sql.reset()
    await ask(client, PRODUCT, {"id": product}, **{"cache-control": "no-cache"})
    one_execution = client.sql.count
    stats = cache(client).stats
    misses, coalesced = stats["miss"], stats["coalesced"]
    await ask(client, "query Other { products(first: 1) { totalCount } }")  # an unrelated entry

    other = {"id": product}
    query = "query Again($id: ID!) { product(id: $id) { id name } }"
    client.sql.reset()
    responses = await asyncio.gather(*(ask(client, query, other) for _ in range(10)))

    assert {r.status_code for r in responses} == {200}
    assert len({r.content for r in responses}) == 1
    assert stats["miss"] == misses + 2  # the unrelated query and one execution of the ten
    assert stats["coalesced"] == coalesced + 9
    assert client.sql.count <= one_execution


async def test_the_cache_can_be_turned_off(store_url: str, tmp_path: Path) -> None:
    async with serve_in_process(app_settings_for(store_url, tmp_path, GATEWAY_RESPONSE_CACHE=False)) as client:
        response = await ask(client, PRODUCTS)
        assert response.status_code == 200
        assert "x-cache" not in response.headers
        assert client.app.state.response_cache is None


# --- across instances, on the shared Redis -------------------------------------------------------------------


@pytest.fixture
async def two_apps(
    store_url: str, tmp_path: Path, redis_url: str
) -> AsyncIterator[tuple[GraphQLClient, GraphQLClient]]:
    prefix = f"gw-test-{uuid.uuid4().hex[:12]}:"
    settings = app_settings_for(store_url, tmp_path, REDIS_URL=redis_url, GATEWAY_CACHE_PREFIX=prefix)
    async with serve_in_process(settings) as one, serve_in_process(settings) as two:
        yield one, two


async def test_instances_share_entries_and_stampedes_across_them_execute_once(
    two_apps: tuple[GraphQLClient, GraphQLClient],
) -> None:
    one, two = two_apps
    product = await create_product(one)
    await ask(one, PRODUCT, {"id": encode_id("Product", 123_456)})  # warm both connection pools
    assert (await ask(two, PRODUCT, {"id": encode_id("Product", 123_456)})).headers["x-cache"] == "HIT"
    before = cache(one).stats["miss"] + cache(two).stats["miss"]

    query = "query Shared($id: ID!) { product(id: $id) { id name } }"
    responses = await asyncio.gather(*(ask(client, query, {"id": product}) for _ in range(5) for client in (one, two)))

    assert len({r.content for r in responses}) == 1
    executions = cache(one).stats["miss"] + cache(two).stats["miss"] - before
    assert executions == 1  # ten requests on two instances, one execution
    assert (await ask(two, query, {"id": product})).headers["x-cache"] == "HIT"


async def test_a_mutation_through_one_process_is_seen_by_the_next_read_through_another(
    store_url: str, tmp_path: Path, redis_url: str
) -> None:
    environment = {
        "DATABASE_URL": store_url,
        "REDIS_URL": redis_url,
        "GATEWAY_CACHE_PREFIX": f"gw-test-{uuid.uuid4().hex[:12]}:",
        "GATEWAY_EMAIL_WORKER": "false",
        "EMAIL_URL": f"file://{tmp_path / 'mail'}",
    }
    admin = {"Authorization": f"Bearer {token_for(load_settings(_env_file=None))}"}
    with gateway_process(environment) as one, gateway_process(environment) as two:
        async with httpx.AsyncClient(timeout=10, headers=admin) as http:

            async def post(base: str, query: str, variables: dict[str, Any]) -> httpx.Response:
                return await http.post(f"{base}/graphql", json={"query": query, "variables": variables})

            created = await post(one, CREATE_PRODUCT, {"sku": "SKU-X", "name": "Lamp"})
            product = created.json()["data"]["createProduct"]["product"]["id"]
            assert (await post(two, PRODUCT, {"id": product})).headers["x-cache"] == "MISS"
            assert (await post(two, PRODUCT, {"id": product})).headers["x-cache"] == "HIT"
            assert (await post(one, PRODUCT, {"id": product})).headers["x-cache"] == "HIT"  # shared entry

            # Each round, `two` answers from its near copy of the entry, then `one` renames the product.
            for round_ in range(15):
                assert (await post(two, PRODUCT, {"id": product})).headers["x-cache"] == "HIT"
                name = f"Desk lamp {round_}"
                renamed = await post(one, RENAME, {"id": product, "name": name})
                assert renamed.json()["data"]["updateProduct"]["product"]["name"] == name

                after = await post(two, PRODUCT, {"id": product})
                assert after.headers["x-cache"] == "MISS", f"round {round_}"
                assert after.json()["data"]["product"]["name"] == name


# --- a Redis that goes away ------------------------------------------------------------------------------------


async def test_the_gateway_serves_uncached_while_redis_is_down_and_never_serves_what_it_could_not_invalidate(
    store_url: str, tmp_path: Path
) -> None:
    with run_redis_server(data_dir=tmp_path) as redis:  # data survives a restart, like a Redis behind a network blip
        settings = app_settings_for(store_url, tmp_path, REDIS_URL=redis.url)
        async with serve_in_process(settings) as client:
            product = await create_product(client, "Lamp")
            await ask(client, PRODUCT, {"id": product})
            assert (await ask(client, PRODUCT, {"id": product})).headers["x-cache"] == "HIT"

            redis.stop()
            down = await ask(client, PRODUCT, {"id": product})
            assert down.status_code == 200
            assert down.json()["data"]["product"]["name"] == "Lamp"
            assert down.headers["x-cache"] == "MISS"
            renamed = await client.execute(RENAME, {"id": product, "name": "Desk lamp"})  # cannot invalidate
            assert renamed["updateProduct"]["product"]["name"] == "Desk lamp"
            assert cache(client).stats["invalidation_failures"] >= 1

            redis.start()  # the old entry is back in Redis
            after = await ask(client, PRODUCT, {"id": product})
            assert after.json()["data"]["product"]["name"] == "Desk lamp"
            assert after.headers["x-cache"] == "MISS"
            assert (await ask(client, PRODUCT, {"id": product})).headers["x-cache"] == "HIT"


# --- ResponseCache on its own ----------------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def produced(body: bytes, tags: tuple[str, ...] = ("product:1",)) -> Produced:
    return Produced(200, body, storable=True, tags=tags)


async def test_a_result_read_before_a_write_is_not_stored_after_its_invalidation() -> None:
    responses = ResponseCache(MemoryTaggedStore(), schema_version="v")
    policy = CachePolicy(60)

    async def run_racing_a_write() -> Produced:
        await responses.invalidate(["product:1"])  # a write commits while this execution reads old data
        return produced(b"old")

    first = await responses.serve("k", policy, run_racing_a_write)
    assert first.state is CacheState.MISS
    assert responses.stats["store_refused"] == 1

    async def run() -> Produced:
        return produced(b"new")

    second = await responses.serve("k", policy, run)
    assert second.state is CacheState.MISS
    assert second.body == b"new"
    assert (await responses.serve("k", policy, run)).state is CacheState.HIT


async def test_stale_while_revalidate_serves_the_old_entry_once_and_refreshes_it() -> None:
    clock = Clock()
    responses = ResponseCache(MemoryTaggedStore(clock=clock), schema_version="v", swr=30, clock=clock)
    policy = CachePolicy(10)
    runs: list[int] = []

    async def run() -> Produced:
        runs.append(1)
        return produced(f"run {len(runs)}".encode())

    assert (await responses.serve("k", policy, run)).body == b"run 1"
    clock.now += 15  # past max-age, inside the stale window
    stale = await responses.serve("k", policy, run)
    await responses.drain()
    fresh = await responses.serve("k", policy, run)

    assert (stale.state, stale.body) == (CacheState.STALE, b"run 1")
    assert (fresh.state, fresh.body) == (CacheState.HIT, b"run 2")
    clock.now += 45  # past the stale window too: a plain miss
    late = await responses.serve("k", policy, run)
    assert (late.state, late.body) == (CacheState.MISS, b"run 3")


def test_keys_change_with_the_schema_version_scope_and_principal() -> None:
    store = MemoryTaggedStore()
    v1, v2 = ResponseCache(store, schema_version="v1"), ResponseCache(store, schema_version="v2")
    public, private = CachePolicy(60), CachePolicy(60, Scope.PRIVATE)

    grants = "grants-digest"
    assert v1.key("d", "Op", {"a": 1, "b": 2}, public, grants) == v1.key("d", "Op", {"b": 2, "a": 1}, public, grants)
    assert v1.key("d", "Op", {}, public, grants) != v2.key("d", "Op", {}, public, grants)
    assert v1.key("d", "Op", {}, private, "alice") != v1.key("d", "Op", {}, private, "bob")
    assert v1.key("d", "Op", {}, private, "alice") != v1.key("d", "Op", {}, public, "alice")
    assert v1.key("d", "Op", {}, public, grants) != v1.key("d", "Op", {}, public, "other-grants")
    assert v1.key("d", "Op", {}, public, grants) != v1.key("d", "Other", {}, public, grants)


async def test_hits_on_a_value_the_store_hands_out_again_share_one_decoded_entry() -> None:
    store = MemoryTaggedStore()
    responses = ResponseCache(store, schema_version="v")
    policy = CachePolicy(60)
    bodies = iter([b"first", b"second"])

    async def run() -> Produced:
        return produced(next(bodies))

    await responses.serve("k", policy, run)
    hits = [await responses.serve("k", policy, run) for _ in range(2)]
    await responses.invalidate(["product:1"])
    await responses.serve("k", policy, run)  # a new value under the same key
    after = await responses.serve("k", policy, run)

    assert [hit.state for hit in hits] == [CacheState.HIT, CacheState.HIT]
    assert hits[0].entry is hits[1].entry  # decoded once, not once per hit
    assert hits[0].body == b"first"
    assert (after.state, after.body) == (CacheState.HIT, b"second")
    assert after.entry is not hits[0].entry
