"""Field validators shared by mutations. Each returns the cleaned value or raises `UserInputError`."""

from __future__ import annotations

import unicodedata
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from email_validator import EmailNotValidError, validate_email

from integrations.errors import ErrorCode, InputErrors, UserInputError
from resolvers.money import is_known_currency

MAX_INT32 = 2**31 - 1

P = ParamSpec("P")
T = TypeVar("T")


def text(field: str, value: str, *, max_length: int, required: bool = True) -> str:
    """Trimmed, NFC-normalised text without control characters."""
    cleaned = unicodedata.normalize("NFC", value).strip()
    if required and not cleaned:
        raise UserInputError(field, f"{field} must not be empty", code=ErrorCode.REQUIRED)
    if len(cleaned) > max_length:
        raise UserInputError(field, f"{field} must be at most {max_length} characters", code=ErrorCode.TOO_LONG)
    if any(unicodedata.category(ch) == "Cc" and ch not in "\n\t" for ch in cleaned):
        raise UserInputError(field, f"{field} must not contain control characters", code=ErrorCode.INVALID)
    return cleaned


def email(field: str, value: str) -> str:
    """A syntactically valid address, normalised (domain lower-cased) and lower-cased for uniqueness."""
    try:
        result = validate_email(value.strip(), check_deliverability=False)
    except EmailNotValidError as exc:
        raise UserInputError(
            field, f"{field} is not a valid email address: {exc}", code=ErrorCode.INVALID_EMAIL
        ) from exc
    return result.normalized.lower()


def integer(field: str, value: int, *, minimum: int = 0, maximum: int = MAX_INT32) -> int:
    if not minimum <= value <= maximum:
        raise UserInputError(field, f"{field} must be between {minimum} and {maximum}", code=ErrorCode.OUT_OF_RANGE)
    return value


def currency(field: str, value: str) -> str:
    code = value.strip().upper()
    if not is_known_currency(code):
        raise UserInputError(field, f"{field} must be a supported ISO 4217 code", code=ErrorCode.INVALID_CURRENCY)
    return code


class Collector:
    """Run several validators and report every failure at once instead of stopping at the first.

    >>> check = Collector()
    >>> name = check(text, "name", "  ", max_length=10)   # None; the error is kept
    >>> check.raise_if_any()                              # raises InputErrors([...])
    """

    def __init__(self) -> None:
        self.errors: list[UserInputError] = []

    def __call__(self, validate: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T | None:
        try:
            return validate(*args, **kwargs)
        except UserInputError as error:
            self.errors.append(error)
            return None

    def add(self, error: UserInputError) -> None:
        self.errors.append(error)

    def raise_if_any(self) -> None:
        if self.errors:
            raise InputErrors(self.errors)
