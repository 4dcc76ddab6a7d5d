"""`POST /webhooks/stripe`: verify the signature on the raw bytes, then apply the event exactly once.

Answers: 200 for an applied, duplicate or ignored event (Stripe stops retrying); 400 for a bad or stale
signature or a malformed body (nothing changed); 413 for an oversize body; 503 when the store is down (Stripe
retries later).
"""

from __future__ import annotations

import logging
from typing import Any

import orjson
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from gateway.request import RequestError, read_body
from integrations.errors import StoreUnavailableError
from integrations.payments.signature import SignatureError, verify
from resolvers.payment.webhooks import MalformedEvent, apply_stripe_event
from resolvers.services import Services

logger = logging.getLogger("gateway.webhooks")

MAX_EVENT_BYTES = 512 * 1024


class StripeWebhookEndpoint:
    def __init__(self, secret: str, *, tolerance: int = 300) -> None:
        self._secret = secret
        self._tolerance = tolerance
        self.services: Services | None = None
        """Set by the app's lifespan."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = await self.handle(Request(scope, receive))
        await response(scope, receive, send)

    async def handle(self, request: Request) -> Response:
        if request.method != "POST":
            return _json(405, {"error": "use POST"}, headers={"Allow": "POST"})
        try:
            body = await read_body(request, MAX_EVENT_BYTES)
        except RequestError as error:
            return _json(error.status, {"error": error.message})
        except ClientDisconnect:
            return _json(400, {"error": "incomplete body"})
        try:
            verify(body, request.headers.get("stripe-signature"), self._secret, tolerance=self._tolerance)
        except SignatureError as error:
            logger.warning("stripe webhook refused: %s", error.message)
            return _json(400, {"error": error.message})
        try:
            event = orjson.loads(body)
        except orjson.JSONDecodeError:
            return _json(400, {"error": "the body is not JSON"})
        if not isinstance(event, dict):
            return _json(400, {"error": "the body is not an event object"})
        assert self.services is not None, "the app's lifespan sets services"
        try:
            outcome = await apply_stripe_event(self.services, event)
        except MalformedEvent as error:
            return _json(400, {"error": str(error)})
        except StoreUnavailableError:
            return _json(503, {"error": "temporarily unavailable"}, headers={"Retry-After": "5"})
        logger.info("stripe webhook %s (%s): %s", event.get("id"), event.get("type"), outcome.value)
        return _json(200, {"received": True, "outcome": outcome.value})


def _json(status: int, body: dict[str, Any], *, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(body), status_code=status, headers=headers, media_type="application/json")
