"""Stripe webhook signatures: ``Stripe-Signature: t=<unix time>,v1=<hex HMAC-SHA256 of "t.raw_body">``.

Verified on the raw bytes before anything parses them, with a constant-time comparison and a tolerance
against replays of old deliveries. Several ``v1`` entries (during secret rotation) are accepted.
"""

from __future__ import annotations

import hashlib
import hmac
import time

from integrations.errors import ErrorCode, GatewayError

DEFAULT_TOLERANCE = 300


class SignatureError(GatewayError):
    code = ErrorCode.INVALID


def sign(payload: bytes, secret: str, timestamp: int) -> str:
    """The header value Stripe would send for `payload` at `timestamp` (used by tests and tools)."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def verify(
    payload: bytes,
    header: str | None,
    secret: str,
    *,
    tolerance: int = DEFAULT_TOLERANCE,
    now: float | None = None,
) -> None:
    """Return if `header` is a valid, fresh signature of `payload`; raise `SignatureError` otherwise."""
    if not header:
        raise SignatureError("missing Stripe-Signature header")
    timestamp: int | None = None
    signatures: list[str] = []
    for item in header.split(","):
        name, _, value = item.strip().partition("=")
        if name == "t" and value.isascii() and value.isdigit():  # str.isdigit alone admits "²", full-width digits…
            timestamp = int(value)
        elif name == "v1" and value.isascii() and value:  # compare_digest raises TypeError on non-ASCII str
            signatures.append(value)
    if timestamp is None or not signatures:
        raise SignatureError("malformed Stripe-Signature header")
    expected = hmac.new(secret.encode(), f"{timestamp}.".encode() + payload, hashlib.sha256).hexdigest()
    if not any(hmac.compare_digest(expected, candidate) for candidate in signatures):
        raise SignatureError("signature does not match the payload")
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance:
        raise SignatureError("signature timestamp is outside the tolerance")
