"""The shared error vocabulary, importable from every layer.

::

    GatewayError
    ├── UserInputError            a client's mistake in one field (becomes a `userErrors` entry or a coded error)
    ├── NotFoundError             a referenced object does not exist
    ├── StoreUnavailableError     the database cannot be reached
    ├── UpstreamError             a third-party service refused a request (a 4xx that retrying cannot fix)
    └── UpstreamUnavailableError  a third-party service is down, too slow, overloaded or its circuit is open

Codes are stable strings: clients switch on them, so they are never renamed.
"""

from __future__ import annotations

from enum import StrEnum


class ErrorCode(StrEnum):
    """Stable machine-readable codes shared by `userErrors` and GraphQL error extensions."""

    INVALID = "INVALID"
    REQUIRED = "REQUIRED"
    TOO_LONG = "TOO_LONG"
    OUT_OF_RANGE = "OUT_OF_RANGE"
    INVALID_EMAIL = "INVALID_EMAIL"
    INVALID_CURRENCY = "INVALID_CURRENCY"
    DUPLICATE = "DUPLICATE"
    NOT_FOUND = "NOT_FOUND"
    INVALID_ID = "INVALID_ID"
    INVALID_CURSOR = "INVALID_CURSOR"
    PAGE_SIZE_EXCEEDED = "PAGE_SIZE_EXCEEDED"
    INSUFFICIENT_STOCK = "INSUFFICIENT_STOCK"
    CURRENCY_MISMATCH = "CURRENCY_MISMATCH"
    IDEMPOTENCY_KEY_REUSED = "IDEMPOTENCY_KEY_REUSED"
    CARD_DECLINED = "CARD_DECLINED"
    PAYMENT_REQUIRES_ACTION = "PAYMENT_REQUIRES_ACTION"
    PAYMENT_FAILED = "PAYMENT_FAILED"
    REFUND_EXCEEDS_CAPTURED = "REFUND_EXCEEDS_CAPTURED"
    INVALID_STATE = "INVALID_STATE"
    UPSTREAM_ERROR = "UPSTREAM_ERROR"
    UPSTREAM_UNAVAILABLE = "UPSTREAM_UNAVAILABLE"
    PAYMENT_PROVIDER_UNAVAILABLE = "PAYMENT_PROVIDER_UNAVAILABLE"
    FORBIDDEN = "FORBIDDEN"


class GatewayError(Exception):
    """Base class of every error the gateway raises on purpose."""

    code: ErrorCode = ErrorCode.INVALID

    def __init__(self, message: str, *, code: ErrorCode | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code


class UserInputError(GatewayError):
    """Invalid input in one field; `field` is the input path (e.g. ``"email"``), or None for the whole input."""

    def __init__(self, field: str | None, message: str, *, code: ErrorCode = ErrorCode.INVALID) -> None:
        super().__init__(message, code=code)
        self.field = field


class InputErrors(GatewayError):
    """Several `UserInputError`s found while validating one input, reported together."""

    def __init__(self, errors: list[UserInputError]) -> None:
        super().__init__("; ".join(e.message for e in errors), code=ErrorCode.INVALID)
        self.errors = errors


class NotFoundError(GatewayError):
    code = ErrorCode.NOT_FOUND


class ForbiddenError(GatewayError):
    """The principal may not read this field or run this mutation; the message names what would allow it."""

    code = ErrorCode.FORBIDDEN


class StoreUnavailableError(GatewayError):
    """The database could not be reached (connection refused, timeout)."""


class UpstreamError(GatewayError):
    """A third-party service answered with a refusal that retrying cannot fix (a 4xx).

    `upstream` names the service ("payments"); `status` is its HTTP status; `upstream_code` is its own error code
    (e.g. Stripe's ``card_declined``) when it gave one. The message never contains credentials.
    """

    code = ErrorCode.UPSTREAM_ERROR

    def __init__(
        self,
        upstream: str,
        message: str,
        *,
        status: int | None = None,
        upstream_code: str | None = None,
        code: ErrorCode | None = None,
    ) -> None:
        super().__init__(message, code=code)
        self.upstream = upstream
        self.status = status
        self.upstream_code = upstream_code


class UpstreamUnavailableError(GatewayError):
    """A third-party service could not answer: connection refused, timeout, 5xx after retries, circuit open,
    or too many calls already in flight. Callers degrade (null field + coded error), never crash."""

    code = ErrorCode.UPSTREAM_UNAVAILABLE

    def __init__(self, upstream: str, message: str, *, code: ErrorCode | None = None) -> None:
        super().__init__(message, code=code)
        self.upstream = upstream
