"""Opaque Relay global IDs (``base64("Customer:42")``) and pagination cursors (``base64("cursor:42")``).

Clients must treat both as opaque; decoding validates the shape and the expected type and raises a coded
`UserInputError` instead of letting a malformed value reach the database.
"""

from __future__ import annotations

import base64
import binascii

from integrations.errors import ErrorCode, UserInputError

MAX_PK = 2**31 - 1
"""Primary keys are INTEGER columns (32-bit on PostgreSQL): a larger key is no ID of ours, and would make the
database refuse the statement rather than find nothing."""


def encode_id(type_name: str, pk: int) -> str:
    return base64.urlsafe_b64encode(f"{type_name}:{pk}".encode()).decode().rstrip("=")


def decode_id(value: str, *, field: str = "id") -> tuple[str, int]:
    """Return ``(type_name, primary_key)`` or raise INVALID_ID."""
    decoded = _b64decode(value)
    type_name, sep, pk = (decoded or "").partition(":")
    if not sep or not type_name.isidentifier() or not _is_pk(pk):
        raise UserInputError(field, f"{field} is not a valid ID: {value[:64]!r}", code=ErrorCode.INVALID_ID)
    return type_name, int(pk)


def decode_typed_id(value: str, expected: str, *, field: str = "id") -> int:
    """The primary key of `value`, which must be the global ID of an `expected` object."""
    type_name, pk = decode_id(value, field=field)
    if type_name != expected:
        raise UserInputError(
            field, f"{field} must be a {expected} ID (got a {type_name} ID)", code=ErrorCode.INVALID_ID
        )
    return pk


def encode_cursor(pk: int) -> str:
    return base64.urlsafe_b64encode(f"cursor:{pk}".encode()).decode().rstrip("=")


def decode_cursor(value: str | None, *, field: str) -> int | None:
    if value is None:
        return None
    prefix, _, pk = (_b64decode(value) or "").partition(":")
    if prefix != "cursor" or not _is_pk(pk):
        raise UserInputError(field, f"{field} is not a valid cursor", code=ErrorCode.INVALID_CURSOR)
    return int(pk)


def _b64decode(value: str) -> str | None:
    if len(value) > 200:
        return None
    try:
        return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None


def _is_pk(text: str) -> bool:
    return text.isascii() and text.isdigit() and 0 < int(text) <= MAX_PK
