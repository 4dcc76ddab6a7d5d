"""Rate limiting through the real app: 429 with Retry-After and RATE_LIMITED, RateLimit-* headers on every answer,
whose allowance a request spends (principal, or client address behind trusted proxies only), Redis away, two
gateway processes sharing one allowance; and the policy on its own (keys, cost weighting)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request

from gateway.app import create_app
from gateway.client_ip import ClientIP
from gateway.rate_limit import RATE_LIMITED, RateLimit
from gateway.request import RequestError
from integrations.ratelimit import Quota
from integrations.ratelimit.memory import MemoryRateLimiter
from integrations.store.engine import create_sessionmaker
from resolvers.access.api_keys import create_api_key
from resolvers.access.principal import Principal, PrincipalKind
from tests.conftest import app_settings_for, token_for
from tests.support.gateway_process import gateway_process
from tests.support.redis_server import run_redis_server

QUERY = {"query": "query Name { __typename }"}
LIMIT_HEADERS = ("ratelimit-limit", "ratelimit-remaining", "ratelimit-reset", "ratelimit-policy")


@asynccontextmanager
async def running_app(sqlite_url: str, tmp_path: Path, **settings: object) -> AsyncIterator[Starlette]:
    """The real app (lifespan included), limited to 3 requests a minute unless told otherwise."""
    values: dict[str, object] = {"GATEWAY_RATE_LIMIT_REQUESTS": 3, "GATEWAY_RATE_LIMIT_PERIOD": 60}
    app = create_app(app_settings_for(sqlite_url, tmp_path, **(values | settings)))
    async with app.router.lifespan_context(app):
        yield app


@asynccontextmanager
async def client_at(app: Starlette, peer: str) -> AsyncIterator[httpx.AsyncClient]:
    """A client whose requests come from the socket address `peer`."""
    transport = httpx.ASGITransport(app=app, client=(peer, 50_000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http


async def ask(http: httpx.AsyncClient, **headers: str) -> httpx.Response:
    return await http.post("/graphql", json=QUERY, headers=headers)


def limits(response: httpx.Response) -> dict[str, str]:
    return {name: response.headers[name] for name in LIMIT_HEADERS if name in response.headers}


async def test_requests_over_the_limit_get_429_with_retry_after_and_a_coded_error(
    sqlite_url: str, tmp_path: Path
) -> None:
    async with running_app(sqlite_url, tmp_path) as app, client_at(app, "198.51.100.1") as http:
        answers = [await ask(http) for _ in range(3)]
        refused = await ask(http, Accept="application/graphql-response+json")

    assert [a.status_code for a in answers] == [200, 200, 200]
    assert [limits(a) for a in answers] == [
        {"ratelimit-limit": "3", "ratelimit-remaining": "2", "ratelimit-reset": "20", "ratelimit-policy": "3;w=60"},
        {"ratelimit-limit": "3", "ratelimit-remaining": "1", "ratelimit-reset": "40", "ratelimit-policy": "3;w=60"},
        {"ratelimit-limit": "3", "ratelimit-remaining": "0", "ratelimit-reset": "60", "ratelimit-policy": "3;w=60"},
    ]
    assert refused.status_code == 429
    assert refused.headers["retry-after"] == "20"
    assert limits(refused) == limits(answers[-1])
    assert refused.headers["content-type"].startswith("application/graphql-response+json")
    body = refused.json()
    assert body == {
        "errors": [
            {
                "message": "Rate limit exceeded (3 per 60 s): retry after 20 s",
                "extensions": {"code": RATE_LIMITED, "retryAfter": 20},
            }
        ]
    }
    assert app.state.rate_limit.stats == {"allowed": 3, "refused": 1, "undecided": 0}


async def test_every_answer_to_an_admitted_request_carries_the_headers_and_counts(
    sqlite_url: str, tmp_path: Path
) -> None:
    async with (
        running_app(sqlite_url, tmp_path, GATEWAY_RATE_LIMIT_REQUESTS=4) as app,
        client_at(app, "198.51.100.2") as http,
    ):
        bad_json = await http.post("/graphql", content=b"{", headers={"Content-Type": "application/json"})
        invalid = await http.post("/graphql", json={"query": "query Q { nope }"})
        miss = await http.post("/graphql", json={"query": "query P { products(first: 1) { totalCount } }"})
        hit = await http.post("/graphql", json={"query": "query P { products(first: 1) { totalCount } }"})
        refused = await ask(http)

    assert bad_json.status_code == 400
    assert invalid.status_code in (200, 400)  # legacy JSON gets 200 for a request error (GraphQL over HTTP)
    assert hit.headers["x-cache"] == "HIT"
    remaining = [limits(r).get("ratelimit-remaining") for r in (bad_json, invalid, miss, hit)]
    assert remaining == ["3", "2", "1", "0"]
    assert refused.status_code == 429


async def test_cost_weighted_operations_spend_their_cost(sqlite_url: str, tmp_path: Path) -> None:
    page = {"query": "query Page { products(first: 10) { edges { node { id } } } }"}  # 1 + 10 * (1 + 1) = 21
    async with (
        running_app(sqlite_url, tmp_path, GATEWAY_RATE_LIMIT_REQUESTS=30, GATEWAY_RATE_LIMIT_COST_WEIGHTED=True) as app,
        client_at(app, "198.51.100.13") as http,
    ):
        first = await http.post("/graphql", json=page)
        second = await http.post("/graphql", json=page)  # 1 on admission, then 20 more: only 8 left
        cheap = await ask(http)  # costs nothing beyond the 1 every request spends

    assert first.status_code == 200
    assert limits(first)["ratelimit-remaining"] == "9"
    assert second.status_code == 429
    assert second.headers["retry-after"] == "24"  # 12 units short, one every 2 s
    assert limits(second)["ratelimit-remaining"] == "8"
    assert cheap.status_code == 200
    assert limits(cheap)["ratelimit-remaining"] == "7"


async def test_a_request_refused_before_authentication_spends_nothing(sqlite_url: str, tmp_path: Path) -> None:
    async with running_app(sqlite_url, tmp_path) as app, client_at(app, "198.51.100.3") as http:
        unauthenticated = [await ask(http, Authorization="Bearer not-a-token") for _ in range(5)]
        assert {r.status_code for r in unauthenticated} == {401}
        assert all(not limits(r) for r in unauthenticated)
        assert limits(await ask(http))["ratelimit-remaining"] == "2"


async def test_anonymous_clients_are_limited_per_address(sqlite_url: str, tmp_path: Path) -> None:
    async with (
        running_app(sqlite_url, tmp_path, GATEWAY_RATE_LIMIT_REQUESTS=1) as app,
        client_at(app, "198.51.100.4") as one,
        client_at(app, "198.51.100.5") as other,
        client_at(app, "2001:db8:1:2::1") as v6,
        client_at(app, "2001:db8:1:2::ffff") as same_64,
        client_at(app, "2001:db8:1:3::1") as next_64,
    ):
        assert (await ask(one)).status_code == 200
        assert (await ask(one)).status_code == 429
        assert (await ask(other)).status_code == 200
        assert (await ask(v6)).status_code == 200
        assert (await ask(same_64)).status_code == 429  # one host usually holds a whole /64
        assert (await ask(next_64)).status_code == 200


async def test_users_and_api_keys_spend_their_own_allowance_from_any_address(sqlite_url: str, tmp_path: Path) -> None:
    async with (
        running_app(sqlite_url, tmp_path, GATEWAY_RATE_LIMIT_REQUESTS=2) as app,
        client_at(app, "198.51.100.6") as here,
        client_at(app, "203.0.113.6") as there,
    ):
        settings = app.state.settings
        alice = {"Authorization": f"Bearer {token_for(settings, subject='alice', roles=())}"}
        bob = {"Authorization": f"Bearer {token_for(settings, subject='bob', roles=())}"}
        created = await create_api_key(create_sessionmaker(app.state.engine), "acme", ["products:read"])
        partner = {"X-API-Key": created.key}

        for headers in (alice, partner):
            assert (await ask(here, **headers)).status_code == 200
            assert (await ask(there, **headers)).status_code == 200  # another address, the same allowance
            refused = await ask(here, **headers)
            assert refused.status_code == 429
            assert refused.json()["errors"][0]["extensions"]["code"] == RATE_LIMITED

        assert (await ask(here, **bob)).status_code == 200  # someone else
        assert (await ask(here)).status_code == 200  # anonymous, from an address the others used
        assert (await ask(here)).status_code == 200


async def test_forwarded_for_is_honoured_only_from_trusted_proxies(sqlite_url: str, tmp_path: Path) -> None:
    async with (
        running_app(sqlite_url, tmp_path, GATEWAY_RATE_LIMIT_REQUESTS=1, GATEWAY_TRUSTED_PROXIES="10.0.0.0/8") as app,
        client_at(app, "10.0.0.2") as proxy,
        client_at(app, "203.0.113.9") as stranger,
    ):
        assert (await ask(proxy, **{"X-Forwarded-For": "198.51.100.7"})).status_code == 200
        assert (await ask(proxy, **{"X-Forwarded-For": "198.51.100.8"})).status_code == 200  # another client
        assert (await ask(proxy, **{"X-Forwarded-For": "1.2.3.4, 198.51.100.7"})).status_code == 429  # forged left

        assert (await ask(stranger, **{"X-Forwarded-For": "198.51.100.9"})).status_code == 200
        assert (await ask(stranger, **{"X-Forwarded-For": "198.51.100.10"})).status_code == 429  # the peer's


async def test_rate_limiting_can_be_turned_off(sqlite_url: str, tmp_path: Path) -> None:
    async with (
        running_app(sqlite_url, tmp_path, GATEWAY_RATE_LIMIT=False, GATEWAY_RATE_LIMIT_REQUESTS=1) as app,
        client_at(app, "198.51.100.11") as http,
    ):
        answers = [await ask(http) for _ in range(3)]
        assert app.state.rate_limit is None
    assert [a.status_code for a in answers] == [200, 200, 200]
    assert not any(limits(a) for a in answers)


async def test_requests_are_served_without_limits_while_redis_is_down(sqlite_url: str, tmp_path: Path) -> None:
    with run_redis_server() as redis:
        async with (
            running_app(sqlite_url, tmp_path, REDIS_URL=redis.url, GATEWAY_RATE_LIMIT_REQUESTS=1) as app,
            client_at(app, "198.51.100.12") as http,
        ):
            assert (await ask(http)).status_code == 200
            assert (await ask(http)).status_code == 429

            redis.stop()
            down = [await ask(http) for _ in range(3)]
            assert [r.status_code for r in down] == [200, 200, 200]
            assert not any(limits(r) for r in down)  # nothing known, nothing claimed
            assert app.state.rate_limit.stats["undecided"] == 3
            assert app.state.rate_limit.limiter.failures == 3

            redis.start()  # empty: the allowance is full again
            back = await ask(http)
            assert back.status_code == 200
            assert limits(back)["ratelimit-remaining"] == "0"
            assert (await ask(http)).status_code == 429


async def test_two_gateway_processes_share_one_allowance(sqlite_url: str, tmp_path: Path, redis_url: str) -> None:
    environment = {
        "DATABASE_URL": sqlite_url,
        "REDIS_URL": redis_url,
        "GATEWAY_CACHE_PREFIX": f"gw-test-{uuid.uuid4().hex[:12]}:",
        "GATEWAY_RATE_LIMIT_REQUESTS": "6",
        "GATEWAY_RATE_LIMIT_PERIOD": "60",
        "GATEWAY_EMAIL_WORKER": "false",
        "EMAIL_URL": f"file://{tmp_path / 'mail'}",
    }
    with gateway_process(environment) as one, gateway_process(environment) as two:
        async with httpx.AsyncClient(timeout=10) as http:

            async def post(base: str) -> httpx.Response:
                return await http.post(f"{base}/graphql", json=QUERY)

            answers = [await post(base) for _ in range(3) for base in (one, two)]
            assert [a.status_code for a in answers] == [200] * 6
            assert [a.headers["ratelimit-remaining"] for a in answers] == ["5", "4", "3", "2", "1", "0"]
            for base in (one, two):
                refused = await post(base)
                assert refused.status_code == 429
                assert int(refused.headers["retry-after"]) == 10
                assert refused.json()["errors"][0]["extensions"] == {"code": RATE_LIMITED, "retryAfter": 10}


# --- the policy on its own --------------------------------------------------------------------------------------


def connection(peer: str, **headers: str) -> Request:
    raw = [(name.lower().encode(), value.encode()) for name, value in headers.items()]
    return Request({"type": "http", "method": "POST", "path": "/graphql", "headers": raw, "client": (peer, 1)})


def policy(limit: int = 5, *, cost_weighted: bool = False, proxies: tuple[str, ...] = ()) -> RateLimit:
    return RateLimit(MemoryRateLimiter(), Quota(limit, 10.0), ClientIP(proxies), cost_weighted=cost_weighted)


def test_users_and_api_keys_are_keyed_by_identity_anonymous_requests_by_address() -> None:
    limits = policy(proxies=("10.0.0.0/8",))
    user = Principal(PrincipalKind.USER, "alice")
    key = Principal(PrincipalKind.API_KEY, "apikey:abc", client="acme")
    anonymous = Principal.anonymous(frozenset({"products:read"}))

    assert limits.key(connection("198.51.100.1"), user) == f"user:{user.identity}"
    assert limits.key(connection("10.0.0.1", **{"X-Forwarded-For": "203.0.113.5"}), user) == f"user:{user.identity}"
    assert limits.key(connection("198.51.100.1"), key) == f"api_key:{key.identity}"
    assert limits.key(connection("198.51.100.1"), anonymous) == "ip:198.51.100.1"
    assert limits.key(connection("10.0.0.1", **{"X-Forwarded-For": "203.0.113.5"}), anonymous) == "ip:203.0.113.5"
    assert limits.key(connection("2001:db8:1:2:3:4:5:6"), anonymous) == "ip:2001:db8:1:2::/64"
    assert limits.key(connection("::ffff:198.51.100.1"), anonymous) == "ip:198.51.100.1"
    assert limits.key(connection("not-an-address"), anonymous) == "ip:unknown"
    assert Principal(PrincipalKind.USER, "alice").identity != Principal(PrincipalKind.API_KEY, "alice").identity


async def test_cost_weighting_spends_the_operations_cost_at_most_the_whole_allowance() -> None:
    weighted = policy(10, cost_weighted=True)
    anonymous = Principal.anonymous()

    admission = await weighted.admit(connection("198.51.100.1"), anonymous)
    assert admission.headers["RateLimit-Remaining"] == "9"
    charged = await weighted.charge(admission, cost=4)  # 1 spent on admission, 3 more now
    assert charged.headers["RateLimit-Remaining"] == "6"
    assert (await weighted.charge(charged, cost=1)) is charged  # nothing more to spend
    with pytest.raises(RequestError) as refused:
        await weighted.charge(charged, cost=8)
    assert refused.value.status == 429
    assert refused.value.headers["Retry-After"] == "1"  # one unit short, a unit a second
    assert refused.value.extensions == {"retryAfter": 1}

    other = await weighted.admit(connection("198.51.100.2"), anonymous)
    assert (await weighted.charge(other, cost=1_000)).headers["RateLimit-Remaining"] == "0"  # the whole allowance

    flat = policy(10)
    admission = await flat.admit(connection("198.51.100.1"), anonymous)
    assert await flat.charge(admission, cost=7) is admission  # without weighting every operation costs 1
