"""Stripe's REST API over the shared upstream client: form-encoded bodies, a bearer key, a pinned
`Stripe-Version`, and an `Idempotency-Key` on every POST.

Only what the gateway needs: create + confirm a PaymentIntent, retrieve, cancel, refund, list refunds.
Stripe's error objects are translated here: a card error (HTTP 402) is an outcome (status FAILED), an unknown
payment method or an over-large refund is the client's mistake (`UserInputError`), and anything that means
"Stripe cannot help right now" becomes `UpstreamUnavailableError` with code PAYMENT_PROVIDER_UNAVAILABLE.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import httpx

from integrations.errors import (
    ErrorCode,
    GatewayError,
    NotFoundError,
    UpstreamError,
    UpstreamUnavailableError,
    UserInputError,
)
from integrations.http import Upstream, UpstreamConfig
from integrations.payments.base import PaymentRequest, PaymentStatus, ProviderPayment, ProviderRefund, status_of

logger = logging.getLogger("integrations.payments.stripe")

UPSTREAM = "payments"
CAPTURED = frozenset({PaymentStatus.SUCCEEDED, PaymentStatus.PARTIALLY_REFUNDED, PaymentStatus.REFUNDED})


def stripe_config(*, api_key: str, api_base: str, api_version: str, **options: Any) -> UpstreamConfig:
    """The upstream configuration for Stripe; `options` are `UpstreamConfig` fields (timeouts, limits, …)."""
    return UpstreamConfig(
        name=UPSTREAM,
        base_url=api_base,
        headers={"Authorization": f"Bearer {api_key}", "Stripe-Version": api_version},
        secrets=(api_key,),
        **options,
    )


class StripePaymentProvider:
    name = "stripe"

    def __init__(self, upstream: Upstream) -> None:
        self._upstream = upstream

    async def create_payment(self, request: PaymentRequest) -> ProviderPayment:
        form = {
            "amount": str(request.amount),
            "currency": request.currency.lower(),
            "payment_method": request.payment_method,
            "payment_method_types[0]": "card",
        }
        form.update({f"metadata[{key}]": value for key, value in request.metadata.items()})
        async with _translated():
            created = await self._upstream.request(
                "POST", "/v1/payment_intents", data=form, idempotency_key=f"{request.idempotency_key}:create"
            )
            intent = _body(created, payment_method_field="payment_method")
            confirmed = await self._upstream.request(
                "POST",
                f"/v1/payment_intents/{intent['id']}/confirm",
                data={"expand[0]": "latest_charge"},
                idempotency_key=f"{request.idempotency_key}:confirm",
            )
            if confirmed.status_code == 402:  # a card error: the intent now says why
                return await self.retrieve_payment(intent["id"])
            return payment_from_intent(_body(confirmed))

    async def retrieve_payment(self, reference: str) -> ProviderPayment:
        async with _translated():
            response = await self._upstream.request(
                "GET", f"/v1/payment_intents/{reference}", params={"expand[]": "latest_charge"}
            )
            return payment_from_intent(_body(response))

    async def cancel_payment(self, reference: str, *, idempotency_key: str) -> ProviderPayment:
        async with _translated():
            response = await self._upstream.request(
                "POST", f"/v1/payment_intents/{reference}/cancel", data={}, idempotency_key=idempotency_key
            )
            if response.status_code == 400 and _error(response).get("code") != "resource_missing":
                # Stripe refuses to cancel twice; like the local provider, an already cancelled payment is the answer
                payment = await self.retrieve_payment(reference)
                if payment.status == PaymentStatus.CANCELLED:
                    return payment
                raise UserInputError(None, _message(response), code=ErrorCode.INVALID_STATE)
            _body(response)  # raises for any other refusal
            return await self.retrieve_payment(reference)

    async def refund_payment(self, reference: str, amount: int | None, *, idempotency_key: str) -> ProviderRefund:
        form = {"payment_intent": reference}
        if amount is not None:
            form["amount"] = str(amount)
        async with _translated():
            response = await self._upstream.request("POST", "/v1/refunds", data=form, idempotency_key=idempotency_key)
            if response.status_code == 400 and _error(response).get("code") != "resource_missing":
                raise await self._refund_refused(reference, response)
            return _refund(_body(response), reference)

    async def list_refunds(self, reference: str) -> list[ProviderRefund]:
        async with _translated():
            response = await self._upstream.request(
                "GET", "/v1/refunds", params={"payment_intent": reference, "limit": "100"}
            )
            return [_refund(item, reference) for item in _body(response).get("data", [])]

    @property
    def upstream(self) -> Upstream:
        """The HTTP client (its `stats` count calls by outcome; its `breaker` tells the circuit state)."""
        return self._upstream

    async def aclose(self) -> None:
        await self._upstream.aclose()

    async def _refund_refused(self, reference: str, response: httpx.Response) -> GatewayError:
        """Why Stripe refused a refund, in the local provider's terms. Stripe's 400 does not say it in a stable
        way, so the payment is read: one never captured (failed, cancelled, awaiting action) cannot be refunded
        at all (INVALID_STATE); a captured one was asked for more than is left (REFUND_EXCEEDS_CAPTURED)."""
        payment = await self.retrieve_payment(reference)
        if payment.status not in CAPTURED:
            return UserInputError(None, "Only a succeeded payment can be refunded", code=ErrorCode.INVALID_STATE)
        return UserInputError("amount", _message(response), code=ErrorCode.REFUND_EXCEEDS_CAPTURED)


@asynccontextmanager
async def _translated() -> AsyncIterator[None]:
    """Give every failure of the provider the payments code, whatever layer noticed it."""
    try:
        yield
    except UpstreamUnavailableError as exc:
        if exc.code is ErrorCode.PAYMENT_PROVIDER_UNAVAILABLE:
            raise
        raise UpstreamUnavailableError(UPSTREAM, exc.message, code=ErrorCode.PAYMENT_PROVIDER_UNAVAILABLE) from exc


def _body(response: httpx.Response, *, payment_method_field: str | None = None) -> dict[str, Any]:
    """The JSON object of a successful response, or the right exception for Stripe's error object."""
    if response.is_success:
        body = _json(response)
        if body is None:
            raise UpstreamUnavailableError(
                UPSTREAM, "payments: unreadable response", code=ErrorCode.PAYMENT_PROVIDER_UNAVAILABLE
            )
        return body
    error = _error(response)
    message = _message(response)
    status = response.status_code
    if status in (401, 403):
        logger.error("payments: the provider refused our credentials (HTTP %s); check STRIPE_API_KEY", status)
        raise UpstreamUnavailableError(
            UPSTREAM, "payments: authentication with the provider failed", code=ErrorCode.PAYMENT_PROVIDER_UNAVAILABLE
        )
    if status == 429:
        raise UpstreamUnavailableError(
            UPSTREAM, "payments: rate limited by the provider", code=ErrorCode.PAYMENT_PROVIDER_UNAVAILABLE
        )
    # Stripe: 404 for an object in the path, 400 resource_missing naming the `param` for one referred to in the body
    # (localstripe answers 404 for both).
    missing = status == 404 or error.get("code") == "resource_missing"
    if missing and payment_method_field and (status == 404 or error.get("param") == payment_method_field):
        # the only object a new PaymentIntent refers to
        raise UserInputError(payment_method_field, f"No such payment method ({message})", code=ErrorCode.INVALID)
    if missing:
        raise NotFoundError(message)
    raise UpstreamError(UPSTREAM, message, status=status, upstream_code=error.get("code"))


def _json(response: httpx.Response) -> dict[str, Any] | None:
    try:
        body = response.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def _error(response: httpx.Response) -> dict[str, Any]:
    """Stripe's error object (``{"error": {"type", "code", "param", "message"}}``), or {} when there is none."""
    error = (_json(response) or {}).get("error")
    return error if isinstance(error, dict) else {}


def _message(response: httpx.Response) -> str:
    error = _error(response)
    return str(error.get("message") or f"HTTP {response.status_code}")


def payment_from_intent(intent: Mapping[str, Any]) -> ProviderPayment:
    """A Stripe PaymentIntent object (from a response or an event) as the gateway sees it."""
    amount = int(intent["amount"])
    charge = intent.get("latest_charge")
    refunded = int(charge.get("amount_refunded") or 0) if isinstance(charge, Mapping) else 0
    error = intent.get("last_payment_error") or {}
    return ProviderPayment(
        reference=str(intent["id"]),
        status=status_of(str(intent["status"]), failed=bool(error), amount=amount, amount_refunded=refunded),
        amount=amount,
        amount_refunded=refunded,
        currency=str(intent["currency"]).upper(),
        created_at=datetime.fromtimestamp(int(intent["created"]), UTC),
        failure_code=error.get("code"),
        failure_message=error.get("message"),
    )


def _refund(refund: Mapping[str, Any], reference: str) -> ProviderRefund:
    return ProviderRefund(
        reference=str(refund["id"]),
        payment_reference=str(refund.get("payment_intent") or reference),
        amount=int(refund["amount"]),
        currency=str(refund["currency"]).upper(),
        status=str(refund.get("status") or "succeeded"),
        created_at=datetime.fromtimestamp(int(refund["created"]), UTC),
    )


def payment_from_charge(charge: Mapping[str, Any]) -> ProviderPayment:
    """A Stripe Charge object (e.g. from ``charge.refunded``) as the state of its PaymentIntent."""
    amount = int(charge["amount"])
    refunded = int(charge.get("amount_refunded") or 0)
    failed = charge.get("status") == "failed"
    return ProviderPayment(
        reference=str(charge["payment_intent"]),
        status=status_of(
            "requires_payment_method" if failed else "succeeded", failed=failed, amount=amount, amount_refunded=refunded
        ),
        amount=amount,
        amount_refunded=refunded,
        currency=str(charge["currency"]).upper(),
        created_at=datetime.fromtimestamp(int(charge["created"]), UTC),
        failure_code=charge.get("failure_code"),
        failure_message=charge.get("failure_message"),
    )
