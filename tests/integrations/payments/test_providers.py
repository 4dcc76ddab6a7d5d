"""One contract, two payment providers: the embedded `local` ledger (on real SQLite and real PostgreSQL) and the
Stripe adapter (against localstripe, a fake of Stripe's HTTP API run as a real process). The same tests run on
both and show the interface behaves the same; a few facts only one of them can show follow.

Stripe's wire format (headers, form bodies, retries, error translation) is checked against a real loopback HTTP
server that records every request and answers with Stripe-shaped JSON (tests/support/http_server.py).
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import parse_qs

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from integrations.errors import (
    ErrorCode,
    NotFoundError,
    UpstreamError,
    UpstreamUnavailableError,
    UserInputError,
)
from integrations.http import Upstream
from integrations.payments.base import PaymentProvider, PaymentRequest, PaymentStatus, ProviderPayment
from integrations.payments.local import LocalPaymentProvider
from integrations.payments.stripe import StripePaymentProvider, stripe_config
from integrations.store.engine import create_sessionmaker
from integrations.store.models import LocalPaymentIntent, LocalRefund
from tests.support.http_server import Reply, ScriptedServer, closed_port
from tests.support.localstripe import (
    API_KEY,
    AUTHENTICATION_REQUIRED_NUMBER,
    DECLINED_CARD,
    LocalStripe,
    run_localstripe,
)

API_VERSION = "2024-06-20"
UNKNOWN_METHOD = "pm_unknown_0123456789"

Call = Callable[[], Awaitable[object]]


@dataclass(frozen=True)
class Methods:
    """A provider's test payment methods for each outcome."""

    succeeding: str
    declined: str
    requires_action: str


@dataclass(frozen=True)
class Case:
    provider: PaymentProvider
    methods: Methods
    refunds_the_rest_exactly: bool = True
    """localstripe refunds the whole charge again when no amount is given (real Stripe refunds what is left)."""


def stripe_provider(api_base: str, **options: Any) -> StripePaymentProvider:
    settings: dict[str, Any] = {"backoff_initial": 0.01, "backoff_max": 0.02, "connect_timeout": 1.0}
    settings.update(options)
    config = stripe_config(api_key=API_KEY, api_base=api_base, api_version=API_VERSION, **settings)
    return StripePaymentProvider(Upstream(config))


def request(method: str, *, amount: int = 1000, currency: str = "eur", key: str | None = None) -> PaymentRequest:
    return PaymentRequest(
        amount=amount,
        currency=currency,
        payment_method=method,
        idempotency_key=key or f"test-{uuid.uuid4().hex}",
        metadata={"order_number": "ORD-1"},
    )


# --- fixtures -------------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def localstripe() -> Iterator[LocalStripe]:
    with run_localstripe() as running:
        yield running


@pytest.fixture(scope="session")
def localstripe_methods(localstripe: LocalStripe) -> Methods:
    return Methods(
        succeeding="pm_card_visa",
        declined=DECLINED_CARD,
        requires_action=localstripe.create_card(AUTHENTICATION_REQUIRED_NUMBER),
    )


LOCAL_METHODS = Methods(
    succeeding="pm_card_visa", declined="pm_card_chargeDeclined", requires_action="pm_card_authenticationRequired"
)


@pytest.fixture(params=["sqlite", "postgresql", "stripe"], ids=["local-sqlite", "local-postgresql", "stripe"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def database_url(request: pytest.FixtureRequest, backend: str) -> str:
    """Overrides conftest's (parametrized over both databases): the store of this module's `backend`, so the
    local provider gets the shared `store_url`/`engine` fixtures on each database and Stripe runs once."""
    assert backend != "stripe", "the Stripe provider does not use the store"
    return str(request.getfixturevalue(f"{backend}_url"))


@pytest.fixture
def local_engine(request: pytest.FixtureRequest, backend: str) -> AsyncEngine | None:
    return None if backend == "stripe" else request.getfixturevalue("engine")


@pytest.fixture
async def case(request: pytest.FixtureRequest, local_engine: AsyncEngine | None) -> AsyncIterator[Case]:
    if local_engine is not None:
        local = LocalPaymentProvider(create_sessionmaker(local_engine))
        yield Case(local, LOCAL_METHODS)
        await local.aclose()
        return
    localstripe: LocalStripe = request.getfixturevalue("localstripe")
    methods: Methods = request.getfixturevalue("localstripe_methods")
    stripe = stripe_provider(localstripe.url)
    yield Case(stripe, methods, refunds_the_rest_exactly=False)
    await stripe.aclose()


# --- the contract, on both providers ---------------------------------------------------------------------------


async def test_a_succeeding_method_is_paid_and_reads_back_the_same(case: Case) -> None:
    provider = case.provider
    payment = await provider.create_payment(request(case.methods.succeeding, amount=1250, currency="eur"))
    assert payment.status == PaymentStatus.SUCCEEDED
    assert (payment.amount, payment.amount_refunded, payment.currency) == (1250, 0, "EUR")
    assert payment.reference
    assert (payment.failure_code, payment.failure_message) == (None, None)
    assert payment.created_at.tzinfo is not None

    again = await provider.retrieve_payment(payment.reference)
    assert replace(again, created_at=payment.created_at) == payment
    assert abs((again.created_at - payment.created_at).total_seconds()) < 1


async def test_a_zero_decimal_currency_keeps_its_amount(case: Case) -> None:
    payment = await case.provider.create_payment(request(case.methods.succeeding, amount=500, currency="JPY"))
    assert (payment.status, payment.amount, payment.currency) == (PaymentStatus.SUCCEEDED, 500, "JPY")


async def test_a_declined_method_is_a_failed_payment_not_an_exception(case: Case) -> None:
    payment = await case.provider.create_payment(request(case.methods.declined))
    assert payment.status == PaymentStatus.FAILED
    assert payment.failure_code == "card_declined"
    assert payment.failure_message
    assert (payment.amount, payment.amount_refunded, payment.currency) == (1000, 0, "EUR")
    again = await case.provider.retrieve_payment(payment.reference)
    assert (again.status, again.failure_code) == (PaymentStatus.FAILED, "card_declined")


async def test_a_method_that_needs_authentication_requires_action_and_can_be_cancelled(case: Case) -> None:
    provider = case.provider
    payment = await provider.create_payment(request(case.methods.requires_action))
    assert payment.status == PaymentStatus.REQUIRES_ACTION
    assert payment.failure_code is None

    cancelled = await provider.cancel_payment(payment.reference, idempotency_key=f"cancel-{uuid.uuid4().hex}")
    assert cancelled.status == PaymentStatus.CANCELLED
    assert cancelled.reference == payment.reference
    assert (await provider.retrieve_payment(payment.reference)).status == PaymentStatus.CANCELLED


async def test_cancelling_twice_answers_the_cancelled_payment(case: Case) -> None:
    payment = await case.provider.create_payment(request(case.methods.requires_action))
    await case.provider.cancel_payment(payment.reference, idempotency_key=f"cancel-{uuid.uuid4().hex}")
    again = await case.provider.cancel_payment(payment.reference, idempotency_key=f"cancel-{uuid.uuid4().hex}")
    assert (again.reference, again.status) == (payment.reference, PaymentStatus.CANCELLED)


async def test_a_succeeded_payment_cannot_be_cancelled(case: Case) -> None:
    payment = await case.provider.create_payment(request(case.methods.succeeding))
    with pytest.raises(UserInputError) as caught:
        await case.provider.cancel_payment(payment.reference, idempotency_key=f"cancel-{uuid.uuid4().hex}")
    assert caught.value.code == ErrorCode.INVALID_STATE
    assert (await case.provider.retrieve_payment(payment.reference)).status == PaymentStatus.SUCCEEDED


async def test_an_unknown_payment_method_is_the_clients_mistake(case: Case) -> None:
    with pytest.raises(UserInputError) as caught:
        await case.provider.create_payment(request(UNKNOWN_METHOD))
    assert caught.value.field == "payment_method"
    assert caught.value.code == ErrorCode.INVALID


async def test_an_unknown_payment_is_not_found(case: Case) -> None:
    provider, missing = case.provider, "pi_doesNotExist0123"
    calls: list[Call] = [
        lambda: provider.retrieve_payment(missing),
        lambda: provider.cancel_payment(missing, idempotency_key=f"cancel-{uuid.uuid4().hex}"),
        lambda: provider.refund_payment(missing, 100, idempotency_key=f"refund-{uuid.uuid4().hex}"),
        lambda: provider.list_refunds(missing),
    ]
    for call in calls:
        with pytest.raises(NotFoundError):
            await call()


async def test_partial_then_full_refund(case: Case) -> None:
    provider = case.provider
    payment = await provider.create_payment(request(case.methods.succeeding, amount=1000))

    first = await provider.refund_payment(payment.reference, 300, idempotency_key=f"refund-{uuid.uuid4().hex}")
    assert (first.amount, first.currency, first.payment_reference, first.status) == (
        300,
        "EUR",
        payment.reference,
        "succeeded",
    )
    assert first.reference
    partly = await provider.retrieve_payment(payment.reference)
    assert (partly.status, partly.amount_refunded) == (PaymentStatus.PARTIALLY_REFUNDED, 300)

    rest = await provider.refund_payment(payment.reference, None, idempotency_key=f"refund-{uuid.uuid4().hex}")
    assert rest.reference != first.reference
    fully = await provider.retrieve_payment(payment.reference)
    assert fully.status == PaymentStatus.REFUNDED
    if case.refunds_the_rest_exactly:
        assert (rest.amount, fully.amount_refunded) == (700, 1000)

    refunds = await provider.list_refunds(payment.reference)
    assert sorted((r.reference, r.amount, r.currency, r.payment_reference) for r in refunds) == sorted(
        [
            (first.reference, 300, "EUR", payment.reference),
            (rest.reference, rest.amount, "EUR", payment.reference),
        ]
    )


async def test_refunding_a_failed_payment_is_refused_as_invalid_state(case: Case) -> None:
    payment = await case.provider.create_payment(request(case.methods.declined))
    with pytest.raises(UserInputError) as caught:
        await case.provider.refund_payment(payment.reference, None, idempotency_key=f"refund-{uuid.uuid4().hex}")
    assert caught.value.code == ErrorCode.INVALID_STATE
    assert caught.value.field is None
    assert caught.value.message
    assert await case.provider.list_refunds(payment.reference) == []


async def test_a_payment_without_refunds_lists_none(case: Case) -> None:
    payment = await case.provider.create_payment(request(case.methods.succeeding))
    assert await case.provider.list_refunds(payment.reference) == []


# --- local only: idempotency in the store ----------------------------------------------------------------------

on_each_database = pytest.mark.parametrize("backend", ["sqlite", "postgresql"], ids=["sqlite", "postgresql"])


async def count(engine: AsyncEngine, table: type[LocalPaymentIntent] | type[LocalRefund]) -> int:
    async with create_sessionmaker(engine)() as session:
        return int(await session.scalar(select(func.count()).select_from(table)) or 0)


@on_each_database
async def test_local_same_idempotency_key_returns_the_same_intent(engine: AsyncEngine) -> None:
    provider = LocalPaymentProvider(create_sessionmaker(engine))
    first = await provider.create_payment(request("pm_card_visa", key="order-1"))
    second = await provider.create_payment(request("pm_card_visa", key="order-1"))
    assert second == first
    assert await count(engine, LocalPaymentIntent) == 1
    other = await provider.create_payment(request("pm_card_visa", key="order-2"))
    assert other.reference != first.reference
    assert await count(engine, LocalPaymentIntent) == 2


@on_each_database
async def test_local_concurrent_identical_creates_make_one_intent(engine: AsyncEngine) -> None:
    provider = LocalPaymentProvider(create_sessionmaker(engine))
    results = await asyncio.gather(
        *(provider.create_payment(request("pm_card_visa", key="order-c")) for _ in range(10))
    )
    assert {payment.reference for payment in results} == {results[0].reference}
    assert {payment.status for payment in results} == {PaymentStatus.SUCCEEDED}
    assert await count(engine, LocalPaymentIntent) == 1


@on_each_database
async def test_local_same_refund_key_refunds_once(engine: AsyncEngine) -> None:
    provider = LocalPaymentProvider(create_sessionmaker(engine))
    payment = await provider.create_payment(request("pm_card_visa", amount=1000))
    first = await provider.refund_payment(payment.reference, 300, idempotency_key="refund-1")
    again = await provider.refund_payment(payment.reference, 300, idempotency_key="refund-1")
    assert again == first
    assert (await provider.retrieve_payment(payment.reference)).amount_refunded == 300
    assert await count(engine, LocalRefund) == 1


@on_each_database
async def test_local_concurrent_identical_refunds_refund_once(engine: AsyncEngine) -> None:
    """Ten concurrent retries of "refund the rest" with one key: one refund of 1000, ten identical answers."""
    provider = LocalPaymentProvider(create_sessionmaker(engine))
    payment = await provider.create_payment(request("pm_card_visa", amount=1000))
    results = await asyncio.gather(
        *(provider.refund_payment(payment.reference, None, idempotency_key="refund-c") for _ in range(10))
    )
    assert {refund.reference for refund in results} == {results[0].reference}
    assert {refund.amount for refund in results} == {1000}
    after = await provider.retrieve_payment(payment.reference)
    assert (after.status, after.amount_refunded) == (PaymentStatus.REFUNDED, 1000)
    assert await count(engine, LocalRefund) == 1


@on_each_database
async def test_local_concurrent_different_refunds_never_exceed_the_amount(engine: AsyncEngine) -> None:
    provider = LocalPaymentProvider(create_sessionmaker(engine))
    payment = await provider.create_payment(request("pm_card_visa", amount=1000))
    results = await asyncio.gather(
        *(provider.refund_payment(payment.reference, 300, idempotency_key=f"refund-{n}") for n in range(5)),
        return_exceptions=True,
    )
    refunded = [r for r in results if not isinstance(r, BaseException)]
    refused = [r for r in results if isinstance(r, BaseException)]
    assert len(refunded) == 3
    assert all(isinstance(e, UserInputError) and e.code == ErrorCode.REFUND_EXCEEDS_CAPTURED for e in refused)
    after = await provider.retrieve_payment(payment.reference)
    assert (after.status, after.amount_refunded) == (PaymentStatus.PARTIALLY_REFUNDED, 900)


@on_each_database
async def test_local_refund_larger_than_what_is_left_is_refused(engine: AsyncEngine) -> None:
    provider = LocalPaymentProvider(create_sessionmaker(engine))
    payment = await provider.create_payment(request("pm_card_visa", amount=1000))
    await provider.refund_payment(payment.reference, 800, idempotency_key="refund-a")
    with pytest.raises(UserInputError) as caught:
        await provider.refund_payment(payment.reference, 201, idempotency_key="refund-b")
    assert (caught.value.field, caught.value.code) == ("amount", ErrorCode.REFUND_EXCEEDS_CAPTURED)
    assert (await provider.retrieve_payment(payment.reference)).amount_refunded == 800


# --- Stripe only: the wire ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
async def running_server() -> AsyncIterator[ScriptedServer]:
    async with ScriptedServer() as running:
        yield running


@pytest.fixture
async def server(running_server: ScriptedServer) -> AsyncIterator[ScriptedServer]:
    running_server.reset()
    yield running_server
    running_server.reset()


@pytest.fixture
async def wire(server: ScriptedServer) -> AsyncIterator[StripePaymentProvider]:
    provider = stripe_provider(server.url)
    yield provider
    await provider.aclose()


def intent(status: str, **fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": "pi_wire_1",
        "object": "payment_intent",
        "amount": 1000,
        "currency": "eur",
        "created": 1_760_000_000,
        "status": status,
        "latest_charge": None,
        "last_payment_error": None,
    }
    body.update(fields)
    return body


def ok(body: dict[str, Any]) -> Reply:
    return Reply(200, body=json.dumps(body).encode())


def stripe_error(status: int, message: str, **fields: str) -> Reply:
    error = {"type": "invalid_request_error", "message": message, **fields}
    return Reply(status, body=json.dumps({"error": error}).encode())


SUCCEEDED = intent("succeeded", latest_charge={"id": "ch_1", "object": "charge", "amount_refunded": 0})


def form(body: bytes) -> dict[str, str]:
    parsed = parse_qs(body.decode("ascii"), keep_blank_values=True, strict_parsing=bool(body))
    assert all(len(values) == 1 for values in parsed.values())
    return {name: values[0] for name, values in parsed.items()}


async def test_stripe_requests_carry_credentials_version_and_idempotency_keys(
    server: ScriptedServer, wire: StripePaymentProvider
) -> None:
    server.script(ok(intent("requires_confirmation")), ok(SUCCEEDED), ok(SUCCEEDED))
    payment = await wire.create_payment(
        PaymentRequest(
            amount=1000,
            currency="EUR",
            payment_method="pm_card_visa",
            idempotency_key="order-key-1",
            metadata={"order_number": "ORD-1"},
        )
    )
    assert (payment.status, payment.reference, payment.currency) == (PaymentStatus.SUCCEEDED, "pi_wire_1", "EUR")
    await wire.retrieve_payment("pi_wire_1")

    create, confirm, retrieve = server.received
    for sent in (create, confirm, retrieve):
        assert sent.headers["authorization"] == f"Bearer {API_KEY}"
        assert sent.headers["stripe-version"] == API_VERSION
    assert (create.method, create.path) == ("POST", "/v1/payment_intents")
    assert (confirm.method, confirm.path) == ("POST", "/v1/payment_intents/pi_wire_1/confirm")
    assert (retrieve.method, retrieve.path) == ("GET", "/v1/payment_intents/pi_wire_1")
    assert create.headers["content-type"] == "application/x-www-form-urlencoded"
    assert form(create.body) == {
        "amount": "1000",
        "currency": "eur",
        "payment_method": "pm_card_visa",
        "payment_method_types[0]": "card",
        "metadata[order_number]": "ORD-1",
    }
    assert form(confirm.body) == {"expand[0]": "latest_charge"}
    assert parse_qs(retrieve.query) == {"expand[]": ["latest_charge"]}
    # Each POST has its own key derived from the request's, so a retried create can never confirm twice.
    keys = [create.headers["idempotency-key"], confirm.headers["idempotency-key"]]
    assert all("order-key-1" in key for key in keys)
    assert len(set(keys)) == 2
    assert "idempotency-key" not in retrieve.headers


async def test_stripe_cancel_and_refund_send_the_callers_idempotency_key(
    server: ScriptedServer, wire: StripePaymentProvider
) -> None:
    refund = {
        "id": "re_1",
        "object": "refund",
        "amount": 300,
        "currency": "eur",
        "created": 1_760_000_000,
        "payment_intent": "pi_wire_1",
        "status": "succeeded",
    }
    server.script(ok(intent("canceled")), ok(intent("canceled")), ok(refund), ok({"object": "list", "data": [refund]}))
    assert (await wire.cancel_payment("pi_wire_1", idempotency_key="cancel-key")).status == PaymentStatus.CANCELLED
    assert (await wire.refund_payment("pi_wire_1", 300, idempotency_key="refund-key")).amount == 300
    [listed] = await wire.list_refunds("pi_wire_1")
    assert (listed.reference, listed.amount, listed.currency) == ("re_1", 300, "EUR")

    cancel, _, refund_post, refund_list = server.received
    assert (cancel.method, cancel.path, cancel.headers["idempotency-key"]) == (
        "POST",
        "/v1/payment_intents/pi_wire_1/cancel",
        "cancel-key",
    )
    assert (refund_post.method, refund_post.path, refund_post.headers["idempotency-key"]) == (
        "POST",
        "/v1/refunds",
        "refund-key",
    )
    assert form(refund_post.body) == {"payment_intent": "pi_wire_1", "amount": "300"}
    assert refund_post.headers["authorization"] == f"Bearer {API_KEY}"
    assert (refund_list.method, parse_qs(refund_list.query)) == (
        "GET",
        {"payment_intent": ["pi_wire_1"], "limit": ["100"]},
    )


async def test_stripe_retries_a_500_with_the_same_idempotency_key(
    server: ScriptedServer, wire: StripePaymentProvider
) -> None:
    server.script(
        stripe_error(500, "An unknown error occurred", type="api_error"),
        ok(intent("requires_confirmation")),
        Reply(503),
        ok(SUCCEEDED),
    )
    payment = await wire.create_payment(request("pm_card_visa", key="order-key-2"))
    assert payment.status == PaymentStatus.SUCCEEDED
    paths = [(sent.method, sent.path) for sent in server.received]
    assert paths == [
        ("POST", "/v1/payment_intents"),
        ("POST", "/v1/payment_intents"),
        ("POST", "/v1/payment_intents/pi_wire_1/confirm"),
        ("POST", "/v1/payment_intents/pi_wire_1/confirm"),
    ]
    create_keys = {sent.headers["idempotency-key"] for sent in server.received[:2]}
    confirm_keys = {sent.headers["idempotency-key"] for sent in server.received[2:]}
    assert len(create_keys) == len(confirm_keys) == 1
    assert create_keys != confirm_keys
    assert server.received[0].body == server.received[1].body


async def test_stripe_down_is_provider_unavailable_without_the_key() -> None:
    with closed_port() as port:
        provider = stripe_provider(f"http://127.0.0.1:{port}")
        try:
            calls: list[Call] = [
                lambda: provider.create_payment(request("pm_card_visa")),
                lambda: provider.retrieve_payment("pi_1"),
                lambda: provider.refund_payment("pi_1", None, idempotency_key="refund-key"),
            ]
            for call in calls:
                with pytest.raises(UpstreamUnavailableError) as caught:
                    await call()
                assert caught.value.code == ErrorCode.PAYMENT_PROVIDER_UNAVAILABLE
                assert caught.value.upstream == "payments"
                assert API_KEY not in str(caught.value)
                assert API_KEY not in caught.value.message
                assert API_KEY not in repr(caught.value.args)
        finally:
            await provider.aclose()


async def test_stripe_rejecting_the_key_is_provider_unavailable(
    server: ScriptedServer, wire: StripePaymentProvider
) -> None:
    server.default = stripe_error(401, f"Invalid API Key provided: {API_KEY[:12]}****{API_KEY[-4:]}")
    calls: list[Call] = [lambda: wire.create_payment(request("pm_card_visa")), lambda: wire.retrieve_payment("pi_1")]
    for call in calls:
        with pytest.raises(UpstreamUnavailableError) as caught:
            await call()
        assert caught.value.code == ErrorCode.PAYMENT_PROVIDER_UNAVAILABLE
        assert API_KEY not in str(caught.value)
    assert len(server.received) == 2  # a 401 is not retried


async def test_stripe_rate_limit_is_provider_unavailable(server: ScriptedServer, wire: StripePaymentProvider) -> None:
    server.default = Reply(429, headers={"Stripe-Should-Retry": "false"}, body=b'{"error": {"type": "rate_limit"}}')
    with pytest.raises(UpstreamUnavailableError) as caught:
        await wire.retrieve_payment("pi_1")
    assert caught.value.code == ErrorCode.PAYMENT_PROVIDER_UNAVAILABLE


async def test_stripe_unknown_payment_method_as_real_stripe_reports_it(
    server: ScriptedServer, wire: StripePaymentProvider
) -> None:
    """Stripe answers 400 resource_missing with `param` (localstripe answers 404): both are the client's mistake."""
    server.script(
        stripe_error(400, "No such PaymentMethod: 'pm_nope'", code="resource_missing", param="payment_method")
    )
    with pytest.raises(UserInputError) as caught:
        await wire.create_payment(request("pm_nope"))
    assert caught.value.field == "payment_method"
    assert [sent.path for sent in server.received] == ["/v1/payment_intents"]  # nothing was confirmed


async def test_stripe_other_refusals_are_upstream_errors(server: ScriptedServer, wire: StripePaymentProvider) -> None:
    server.script(stripe_error(400, "Invalid currency: xyz", code="parameter_invalid", param="currency"))
    with pytest.raises(UpstreamError) as caught:
        await wire.create_payment(request("pm_card_visa", currency="xyz"))
    assert (caught.value.status, caught.value.upstream_code) == (400, "parameter_invalid")
    assert caught.value.code == ErrorCode.UPSTREAM_ERROR


async def test_stripe_decline_reads_the_failed_intent(server: ScriptedServer, wire: StripePaymentProvider) -> None:
    error = {"code": "card_declined", "decline_code": "generic_decline", "message": "Your card was declined."}
    failed = intent("requires_payment_method", last_payment_error=error)
    server.script(
        ok(intent("requires_confirmation")),
        stripe_error(402, "Your card was declined.", code="card_declined"),
        ok(failed),
    )
    payment: ProviderPayment = await wire.create_payment(request("pm_card_chargeDeclined"))
    assert (payment.status, payment.failure_code, payment.failure_message) == (
        PaymentStatus.FAILED,
        "card_declined",
        "Your card was declined.",
    )


async def test_stripe_refund_refusals_are_told_apart_by_the_payments_state(
    server: ScriptedServer, wire: StripePaymentProvider
) -> None:
    """Stripe's 400 for a refund does not say in a stable way why: the payment's state does, as in `local`."""
    too_much = stripe_error(400, "Refund amount (€12.00) is greater than unrefunded amount on charge (€10.00)")
    server.script(too_much, ok(SUCCEEDED))
    with pytest.raises(UserInputError) as caught:
        await wire.refund_payment("pi_wire_1", 1200, idempotency_key="refund-1")
    assert (caught.value.field, caught.value.code) == ("amount", ErrorCode.REFUND_EXCEEDS_CAPTURED)

    declined = {"code": "card_declined", "message": "Your card was declined."}
    not_captured = stripe_error(400, "This PaymentIntent does not have a successful charge to refund.")
    server.script(not_captured, ok(intent("requires_payment_method", last_payment_error=declined)))
    with pytest.raises(UserInputError) as caught:
        await wire.refund_payment("pi_wire_1", None, idempotency_key="refund-2")
    assert (caught.value.field, caught.value.code) == (None, ErrorCode.INVALID_STATE)

    server.script(stripe_error(400, "No such payment_intent: 'pi_x'", code="resource_missing", param="payment_intent"))
    with pytest.raises(NotFoundError):
        await wire.refund_payment("pi_x", None, idempotency_key="refund-3")
    assert [(sent.method, sent.path) for sent in server.received] == [
        ("POST", "/v1/refunds"),
        ("GET", "/v1/payment_intents/pi_wire_1"),
        ("POST", "/v1/refunds"),
        ("GET", "/v1/payment_intents/pi_wire_1"),
        ("POST", "/v1/refunds"),
    ]
