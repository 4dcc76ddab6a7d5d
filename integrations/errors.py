"""The shared error vocabulary, importable from every layer.

::

    GatewayError
    ├── UserInputError        a client's mistake in one field (becomes a `userErrors` entry or a coded error)
    ├── NotFoundError         a referenced object does not exist
    └── StoreUnavailableError the database cannot be reached

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


class StoreUnavailableError(GatewayError):
    """The database could not be reached (connection refused, timeout)."""
