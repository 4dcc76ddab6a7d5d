"""`Upstream` against a real HTTP server on 127.0.0.1 (tests/support/http_server.py): retries, breaker, bulkhead,
timeouts, secrets. No mocks: every attempt is a real request the server records."""

from __future__ import annotations

import asyncio
import logging
import os
import re
import sys
import time
import traceback
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from integrations.errors import ErrorCode, UpstreamUnavailableError
from integrations.http import Upstream, UpstreamConfig
from tests.support.http_server import Reply, ScriptedServer, closed_port

ROOT = Path(__file__).resolve().parents[2]
API_KEY = "sk_test_secret_4eC39HqLyjWDarjtT1zdp7dc"
CONFIGURED_SECRET = "whsec_configured_secret_9f8e7d"


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
async def running_server() -> AsyncIterator[ScriptedServer]:
    async with ScriptedServer() as running:
        yield running


@pytest.fixture
async def server(running_server: ScriptedServer) -> AsyncIterator[ScriptedServer]:
    """The module's server, with an empty script and nothing received."""
    running_server.reset()
    yield running_server
    running_server.reset()


def config(base_url: str, **overrides: Any) -> UpstreamConfig:
    """Fast settings: tiny backoff, short timeouts, a breaker that stays out of the way unless a test wants it."""
    settings: dict[str, Any] = {
        "name": "payments",
        "base_url": base_url,
        "connect_timeout": 1.0,
        "read_timeout": 2.0,
        "retries": 2,
        "backoff_initial": 0.001,
        "backoff_max": 0.005,
        "breaker_failures": 100,
        "headers": {"Authorization": f"Bearer {API_KEY}"},
        "secrets": (CONFIGURED_SECRET,),
    }
    settings.update(overrides)
    return UpstreamConfig(**settings)


def state(upstream: Upstream) -> str:
    """The breaker's state as a plain str, so the type checker does not narrow it across transitions."""
    return upstream.breaker.state


async def wait_until(condition: Callable[[], bool]) -> None:
    """Poll (the server lives in this event loop, so the test must yield to it) for up to 2 s."""
    for _ in range(400):
        if condition():
            return
        await asyncio.sleep(0.005)
    pytest.fail("condition not reached within 2 s")


# -- passthrough ---------------------------------------------------------------------------------------------


async def test_2xx_passthrough_sends_a_form_body_and_the_configured_headers(server: ScriptedServer) -> None:
    server.script(Reply(200, headers={"X-Upstream": "yes"}, body=b'{"id": "pi_1"}'))
    async with Upstream(config(server.url)) as upstream:
        response = await upstream.request(
            "POST",
            "/v1/payment_intents",
            params={"expand[]": "latest_charge"},
            data={"amount": "1000", "metadata[order]": "A-1"},
            headers={"Stripe-Account": "acct_1"},
        )
        assert response.status_code == 200
        assert response.json() == {"id": "pi_1"}
        assert response.headers["X-Upstream"] == "yes"
        assert upstream.stats == {"success": 1}
    [seen] = server.received
    assert (seen.method, seen.path, seen.query) == ("POST", "/v1/payment_intents", "expand%5B%5D=latest_charge")
    assert seen.headers["content-type"] == "application/x-www-form-urlencoded"
    assert seen.body == b"amount=1000&metadata%5Border%5D=A-1"
    assert seen.headers["authorization"] == f"Bearer {API_KEY}"
    assert seen.headers["stripe-account"] == "acct_1"
    assert "idempotency-key" not in seen.headers


async def test_keep_alive_reuses_one_connection_and_aclose_closes_the_pool(server: ScriptedServer) -> None:
    await wait_until(lambda: server.open_connections == 0)  # earlier tests' clients are gone
    upstream = Upstream(config(server.url))
    for _ in range(3):
        assert (await upstream.request("GET", "/v1/balance")).status_code == 200
    assert len({seen.client_port for seen in server.received}) == 1
    assert server.open_connections == 1
    await upstream.aclose()
    assert upstream.is_closed
    await wait_until(lambda: server.open_connections == 0)
    with pytest.raises(RuntimeError, match="closed"):
        await upstream.request("GET", "/v1/balance")
    assert len(server.received) == 3


async def test_proxy_settings_in_the_environment_are_ignored(server: ScriptedServer) -> None:
    """A child process with every proxy variable pointing at a dead port still reaches the server directly."""
    code = (
        "import asyncio, sys\n"
        "from integrations.http import Upstream, UpstreamConfig\n"
        "async def main():\n"
        "    async with Upstream(UpstreamConfig(name='payments', base_url=sys.argv[1], retries=0)) as upstream:\n"
        "        print((await upstream.request('GET', '/v1/balance')).status_code)\n"
        "asyncio.run(main())\n"
    )
    with closed_port() as dead:
        proxy = f"http://127.0.0.1:{dead}"
        env = {**os.environ, "HTTP_PROXY": proxy, "HTTPS_PROXY": proxy, "ALL_PROXY": proxy, "NO_PROXY": ""}
        env.update({name.lower(): value for name, value in env.items() if name.endswith("_PROXY")})
        child = await asyncio.create_subprocess_exec(
            sys.executable, "-c", code, server.url, cwd=ROOT, env=env, stdout=asyncio.subprocess.PIPE
        )
        stdout, _ = await asyncio.wait_for(child.communicate(), 30)
    assert child.returncode == 0
    assert stdout.decode().strip() == "200"
    assert len(server.received) == 1


async def test_an_absolute_url_is_refused_so_credentials_never_leave_the_base_url(server: ScriptedServer) -> None:
    async with Upstream(config(server.url)) as upstream:
        with pytest.raises(ValueError, match="relative"):
            await upstream.request("GET", f"{server.url}/v1/elsewhere")
        assert state(upstream) == "closed"
    assert server.received == []


# -- retries -------------------------------------------------------------------------------------------------


async def test_503_503_200_succeeds_after_retries(server: ScriptedServer) -> None:
    server.script(Reply(503), Reply(503), Reply(200, body=b'{"ok": true}'))
    async with Upstream(config(server.url)) as upstream:
        response = await upstream.request("GET", "/v1/balance")
        assert response.json() == {"ok": True}
        assert upstream.stats == {"retry": 2, "success": 1}
    assert len(server.received) == 3


async def test_503_forever_fails_after_retries_plus_one_attempts(server: ScriptedServer) -> None:
    server.default = Reply(503)
    async with Upstream(config(server.url, retries=2)) as upstream:
        with pytest.raises(UpstreamUnavailableError) as caught:
            await upstream.request("GET", "/v1/balance")
        assert upstream.stats == {"retry": 2, "failure": 1}
    error = caught.value
    assert (error.upstream, error.code, error.message) == ("payments", ErrorCode.UPSTREAM_UNAVAILABLE, str(error))
    assert str(error) == "payments: HTTP 503 after 3 attempts"
    assert error.__cause__ is None
    assert len(server.received) == 3


async def test_409_is_retried(server: ScriptedServer) -> None:
    server.script(Reply(409), Reply(200))
    async with Upstream(config(server.url)) as upstream:
        assert (await upstream.request("GET", "/v1/balance")).status_code == 200
    assert len(server.received) == 2


@pytest.mark.parametrize("status", [400, 401, 402, 404, 429])
async def test_other_4xx_are_returned_without_retry_and_count_as_healthy(server: ScriptedServer, status: int) -> None:
    server.script(Reply(503), Reply(status, body=b'{"error": {"code": "card_declined"}}'))
    async with Upstream(config(server.url, retries=0)) as upstream:
        with pytest.raises(UpstreamUnavailableError):
            await upstream.request("GET", "/v1/charges/ch_1")
        assert upstream.breaker.consecutive_failures == 1
        response = await upstream.request("GET", "/v1/charges/ch_1")
        assert response.status_code == status
        assert response.json() == {"error": {"code": "card_declined"}}
        assert upstream.breaker.consecutive_failures == 0  # a 4xx means the upstream is up
        assert upstream.stats == {"failure": 1, "client_error": 1}
    assert len(server.received) == 2


async def test_stripe_should_retry_true_retries_a_4xx(server: ScriptedServer) -> None:
    server.script(Reply(400, headers={"Stripe-Should-Retry": "true"}), Reply(200))
    async with Upstream(config(server.url)) as upstream:
        assert (await upstream.request("GET", "/v1/balance")).status_code == 200
    assert len(server.received) == 2


async def test_stripe_should_retry_true_on_every_attempt_ends_unavailable(server: ScriptedServer) -> None:
    server.default = Reply(429, headers={"Stripe-Should-Retry": "true"})
    async with Upstream(config(server.url, retries=1)) as upstream:
        with pytest.raises(UpstreamUnavailableError, match=r"^payments: HTTP 429 after 2 attempts$"):
            await upstream.request("GET", "/v1/balance")
    assert len(server.received) == 2


async def test_stripe_should_retry_false_stops_retries_even_on_5xx(server: ScriptedServer) -> None:
    server.default = Reply(503, headers={"Stripe-Should-Retry": "false"})
    async with Upstream(config(server.url)) as upstream:
        with pytest.raises(UpstreamUnavailableError, match=r"^payments: HTTP 503 after 1 attempt$"):
            await upstream.request("GET", "/v1/balance")
        assert upstream.stats == {"failure": 1}
    assert len(server.received) == 1


async def test_stripe_should_retry_false_returns_a_409(server: ScriptedServer) -> None:
    server.default = Reply(409, headers={"Stripe-Should-Retry": "false"})
    async with Upstream(config(server.url)) as upstream:
        assert (await upstream.request("GET", "/v1/balance")).status_code == 409
    assert len(server.received) == 1


@pytest.mark.parametrize("method", ["POST", "PATCH"])
async def test_a_non_idempotent_call_without_a_key_gets_exactly_one_attempt(
    server: ScriptedServer, method: str
) -> None:
    server.default = Reply(503)
    async with Upstream(config(server.url)) as upstream:
        with pytest.raises(UpstreamUnavailableError, match=r"^payments: HTTP 503 after 1 attempt$"):
            await upstream.request(method, "/v1/payment_intents", data={"amount": "1000"})
        assert upstream.stats == {"failure": 1}
    assert len(server.received) == 1


async def test_a_post_with_a_key_is_retried_with_the_same_idempotency_key(server: ScriptedServer) -> None:
    server.script(Reply(503), Reply(409), Reply(200))
    async with Upstream(config(server.url)) as upstream:
        response = await upstream.request(
            "POST", "/v1/payment_intents", data={"amount": "1000"}, idempotency_key="order-7:create"
        )
        assert response.status_code == 200
    assert [seen.headers.get("idempotency-key") for seen in server.received] == ["order-7:create"] * 3
    assert {seen.body for seen in server.received} == {b"amount=1000"}


@pytest.mark.parametrize("method", ["GET", "DELETE", "HEAD"])
async def test_idempotent_methods_are_retried_without_a_key(server: ScriptedServer, method: str) -> None:
    server.script(Reply(502), Reply(200))
    async with Upstream(config(server.url)) as upstream:
        assert (await upstream.request(method, "/v1/customers/cus_1")).status_code == 200
    assert [seen.method for seen in server.received] == [method, method]
    assert all("idempotency-key" not in seen.headers for seen in server.received)


@pytest.mark.parametrize(
    ("retry_after", "backoff_initial", "backoff_max"),
    [("0", 5.0, 5.0), ("30", 0.01, 0.05)],
    ids=["header-beats-a-long-backoff", "header-capped-at-backoff-max"],
)
async def test_a_numeric_retry_after_sets_the_wait_capped_at_backoff_max(
    server: ScriptedServer, retry_after: str, backoff_initial: float, backoff_max: float
) -> None:
    server.script(Reply(503, headers={"Retry-After": retry_after}), Reply(200))
    async with Upstream(config(server.url, backoff_initial=backoff_initial, backoff_max=backoff_max)) as upstream:
        started = time.monotonic()
        assert (await upstream.request("GET", "/v1/balance")).status_code == 200
        assert time.monotonic() - started < 1.0
    assert len(server.received) == 2


# -- transport failures --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "idempotency_key", "attempts"),
    [("GET", None, 2), ("POST", None, 1), ("POST", "order-7:confirm", 2)],
    ids=["get-retried", "post-once", "keyed-post-retried"],
)
async def test_a_server_slower_than_read_timeout_times_out(
    server: ScriptedServer, method: str, idempotency_key: str | None, attempts: int
) -> None:
    server.default = Reply(200, delay=5.0)
    async with Upstream(config(server.url, read_timeout=0.1, retries=1)) as upstream:
        started = time.monotonic()
        with pytest.raises(UpstreamUnavailableError, match=r"^payments: timed out$") as caught:
            await upstream.request(method, "/v1/payment_intents", idempotency_key=idempotency_key)
        assert time.monotonic() - started < 1.5
        assert isinstance(caught.value.__cause__, httpx.ReadTimeout)
        assert upstream.stats == {"failure": 1, **({"retry": attempts - 1} if attempts > 1 else {})}
    assert len(server.received) == attempts


async def test_connection_refused_is_unavailable() -> None:
    with closed_port() as port:
        async with Upstream(config(f"http://127.0.0.1:{port}")) as upstream:
            with pytest.raises(UpstreamUnavailableError, match=r"^payments: connection failed$") as caught:
                await upstream.request("GET", "/v1/balance")
            assert isinstance(caught.value.__cause__, httpx.ConnectError)
            assert upstream.stats == {"retry": 2, "failure": 1}  # a GET is retried on transport errors too


# -- circuit breaker -----------------------------------------------------------------------------------------


async def open_circuit(upstream: Upstream, server: ScriptedServer, failures: int) -> None:
    server.default = Reply(503)
    for _ in range(failures):
        with pytest.raises(UpstreamUnavailableError, match="HTTP 503"):
            await upstream.request("GET", "/v1/balance")
    assert state(upstream) == "open"


async def test_the_circuit_opens_after_n_failed_calls_then_fails_fast(server: ScriptedServer) -> None:
    async with Upstream(config(server.url, breaker_failures=3, retries=1)) as upstream:
        server.default = Reply(503)
        with pytest.raises(UpstreamUnavailableError):
            await upstream.request("GET", "/v1/balance")
        assert upstream.breaker.consecutive_failures == 1  # one failed call, however many attempts
        assert state(upstream) == "closed"
        await open_circuit(upstream, server, 2)
        assert len(server.received) == 6
        server.default = Reply(200)
        for _ in range(5):
            with pytest.raises(UpstreamUnavailableError, match=r"^payments: circuit open$") as caught:
                await upstream.request("GET", "/v1/balance")
            assert caught.value.__cause__ is None
        assert len(server.received) == 6  # the network was never touched
        assert upstream.stats["short_circuit"] == 5


async def test_after_the_cooldown_one_probe_goes_through_and_its_success_closes_the_circuit(
    server: ScriptedServer,
) -> None:
    clock = FakeClock()
    async with Upstream(config(server.url, breaker_failures=2, breaker_cooldown=30.0), clock=clock) as upstream:
        await open_circuit(upstream, server, 2)
        sent = len(server.received)
        clock.now += 29.0
        with pytest.raises(UpstreamUnavailableError, match="circuit open"):
            await upstream.request("GET", "/v1/balance")
        clock.now += 1.0
        assert state(upstream) == "half_open"
        server.script(Reply(200, delay=0.2))
        probe = asyncio.create_task(upstream.request("GET", "/v1/balance"))
        await wait_until(lambda: len(server.received) == sent + 1)
        with pytest.raises(UpstreamUnavailableError, match="circuit open"):  # concurrent with the probe
            await upstream.request("GET", "/v1/balance")
        assert (await probe).status_code == 200
        assert state(upstream) == "closed"
        server.default = Reply(200)
        assert (await upstream.request("GET", "/v1/balance")).status_code == 200
    assert len(server.received) == sent + 2


async def test_a_failed_probe_reopens_the_circuit_for_a_fresh_cooldown(server: ScriptedServer) -> None:
    clock = FakeClock()
    async with Upstream(config(server.url, breaker_failures=2, breaker_cooldown=30.0), clock=clock) as upstream:
        await open_circuit(upstream, server, 2)
        clock.now += 30.0
        with pytest.raises(UpstreamUnavailableError, match="HTTP 503"):
            await upstream.request("GET", "/v1/balance")  # the probe
        assert state(upstream) == "open"
        sent = len(server.received)
        clock.now += 29.0
        with pytest.raises(UpstreamUnavailableError, match="circuit open"):
            await upstream.request("GET", "/v1/balance")
        assert len(server.received) == sent


async def test_a_cancelled_probe_lets_the_next_call_probe(server: ScriptedServer) -> None:
    clock = FakeClock()
    async with Upstream(config(server.url, breaker_failures=1, breaker_cooldown=30.0), clock=clock) as upstream:
        await open_circuit(upstream, server, 1)
        clock.now += 30.0
        server.script(Reply(200, delay=5.0))
        probe = asyncio.create_task(upstream.request("GET", "/v1/balance"))
        await wait_until(lambda: len(server.received) == 4)
        probe.cancel()
        with pytest.raises(asyncio.CancelledError):
            await probe
        server.default = Reply(200)
        assert (await upstream.request("GET", "/v1/balance")).status_code == 200
        assert state(upstream) == "closed"


# -- bulkhead ------------------------------------------------------------------------------------------------


async def test_the_bulkhead_rejects_a_third_concurrent_call(server: ScriptedServer) -> None:
    server.default = Reply(200, delay=0.3)
    async with Upstream(config(server.url, max_concurrency=2, connect_timeout=0.1)) as upstream:
        slow = [asyncio.create_task(upstream.request("GET", f"/v1/slow/{n}")) for n in range(2)]
        await wait_until(lambda: len(server.received) == 2)
        started = time.monotonic()
        with pytest.raises(UpstreamUnavailableError, match=r"^payments: too many concurrent calls$"):
            await upstream.request("GET", "/v1/third")
        assert time.monotonic() - started < 0.25
        assert upstream.breaker.consecutive_failures == 0  # a rejection is not the upstream's fault
        assert [response.status_code for response in await asyncio.gather(*slow)] == [200, 200]
        assert upstream.stats == {"rejected": 1, "success": 2}
    assert [seen.path for seen in server.received] == ["/v1/slow/0", "/v1/slow/1"]


async def test_a_call_that_gets_a_slot_in_time_waits_for_it(server: ScriptedServer) -> None:
    server.default = Reply(200, delay=0.05)
    async with Upstream(config(server.url, max_concurrency=1, connect_timeout=1.0)) as upstream:
        responses = await asyncio.gather(*(upstream.request("GET", "/v1/balance") for _ in range(3)))
        assert [response.status_code for response in responses] == [200, 200, 200]
    assert len(server.received) == 3


# -- logs and secrets ----------------------------------------------------------------------------------------


async def test_a_warning_per_retry_and_per_final_failure(
    server: ScriptedServer, caplog: pytest.LogCaptureFixture
) -> None:
    server.default = Reply(503)
    caplog.set_level(logging.DEBUG)
    async with Upstream(config(server.url)) as upstream:
        with pytest.raises(UpstreamUnavailableError):
            await upstream.request("GET", "/v1/customers?email=jane@example.com", params={"limit": "3"})
    records = [r for r in caplog.records if r.name == "integrations.http" and r.levelno == logging.WARNING]
    messages = [r.getMessage() for r in records]
    assert len(messages) == 3
    for attempt, message in enumerate(messages[:2], start=1):
        retrying = rf"payments: GET /v1/customers attempt {attempt}/3 failed \(HTTP 503\), retrying in \d+\.\d{{3}} s"
        assert re.fullmatch(retrying, message), message
    assert messages[2] == "payments: GET /v1/customers attempt 3/3 failed (HTTP 503), giving up"
    for attempt, record in enumerate(records, start=1):
        assert record.getMessage().startswith(f"payments: GET /v1/customers attempt {attempt}")
        fields = {name: record.__dict__[name] for name in ("upstream", "http_method", "http_path", "attempt", "cause")}
        assert fields == {
            "upstream": "payments",
            "http_method": "GET",
            "http_path": "/v1/customers",
            "attempt": attempt,
            "cause": "HTTP 503",
        }
        assert "jane" not in record.getMessage()
        assert "limit" not in record.getMessage()


def leaks(text: str) -> list[str]:
    return [secret for secret in (API_KEY, CONFIGURED_SECRET) if secret in text]


async def test_secrets_appear_in_no_error_message_and_no_log_record(
    server: ScriptedServer, caplog: pytest.LogCaptureFixture
) -> None:
    """The key travels in the Authorization header; the configured secret sits in the path (and a body)."""
    caplog.set_level(logging.DEBUG)
    secret_path = f"/v1/accounts/{CONFIGURED_SECRET}/charges"
    server.default = Reply(503, body=f'{{"error": "{API_KEY} {CONFIGURED_SECRET}"}}'.encode())
    errors: list[UpstreamUnavailableError] = []
    async with Upstream(config(server.url, breaker_failures=3)) as upstream:
        for method, key in [("GET", None), ("POST", "k1"), ("POST", None)]:
            with pytest.raises(UpstreamUnavailableError) as caught:
                await upstream.request(method, secret_path, data={"note": "x"}, idempotency_key=key)
            errors.append(caught.value)
        with pytest.raises(UpstreamUnavailableError) as caught:  # circuit now open
            await upstream.request("GET", secret_path)
        errors.append(caught.value)
    server.default = Reply(200, delay=5.0)
    async with Upstream(config(server.url, read_timeout=0.05, retries=1)) as upstream:
        with pytest.raises(UpstreamUnavailableError) as caught:
            await upstream.request("GET", secret_path)
        errors.append(caught.value)
    with closed_port() as port:
        async with Upstream(config(f"http://127.0.0.1:{port}", retries=1)) as upstream:
            with pytest.raises(UpstreamUnavailableError) as caught:
                await upstream.request("GET", secret_path)
            errors.append(caught.value)

    assert all(seen.headers["authorization"] == f"Bearer {API_KEY}" for seen in server.received)
    assert [str(error).split(": ", 1)[1] for error in errors] == [
        "HTTP 503 after 3 attempts",
        "HTTP 503 after 3 attempts",
        "HTTP 503 after 1 attempt",
        "circuit open",
        "timed out",
        "connection failed",
    ]
    for error in errors:
        assert leaks("".join(traceback.format_exception(error))) == []
    ours = [r for r in caplog.records if r.name == "integrations.http"]
    assert any("[redacted]" in r.getMessage() for r in ours)
    assert any(r.name == "httpx" and "[redacted]" in r.getMessage() for r in caplog.records)
    for record in caplog.records:
        assert leaks(record.getMessage()) == [], record.name
        assert leaks(repr(vars(record))) == [], record.name
