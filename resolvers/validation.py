"""Field validators shared by mutations and filters. Each returns the cleaned value or raises a coded `UserInputError`.

Text (`text`) is NFC-normalised and trimmed of white space and zero-width characters at both ends; its length is
counted in code points after that, as PostgreSQL counts ``VARCHAR(n)``. Refused everywhere, because no legitimate
value holds them and they break storage or make text display as something it is not: control characters (NUL
included; tab and line breaks only in multi-line text), lone surrogates, and the bidirectional embedding, override
and isolate controls U+202A..U+202E and U+2066..U+2069 ("Trojan Source"). Zero-width joiners inside text,
combining marks, emoji, right-to-left scripts and quotes or markup (``'; DROP TABLE``, ``<script>``) are ordinary
text: values only ever reach SQL as bound parameters and the graph as JSON strings.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from email_validator import EmailNotValidError, validate_email

from integrations.errors import ErrorCode, InputErrors, UserInputError
from resolvers.money import is_known_currency

MAX_INT32 = 2**31 - 1
"""The largest INTEGER on PostgreSQL (every amount, count and key column) and GraphQL's largest Int."""

BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
LINE_SEPARATORS = frozenset("\u2028\u2029")
ZERO_WIDTH = frozenset("\u200b\u200c\u200d\u2060\ufeff")
"""Trimmed from both ends like white space: zero-width space, (non-)joiners, word joiner, byte order mark."""
_NEWLINES = re.compile(r"\r\n?")
_TOKEN = re.compile(r"[A-Za-z0-9_\-]+")

P = ParamSpec("P")
T = TypeVar("T")


def text(field: str, value: str, *, max_length: int, required: bool = True, multiline: bool = False) -> str:
    """Trimmed, NFC-normalised text of at most `max_length` code points (see the module's docstring).

    `multiline` text may hold tabs and line breaks (CR LF and CR become LF); other text is one line.
    Text with nothing visible (only spaces and format characters) counts as empty.
    """
    cleaned = _trim(unicodedata.normalize("NFC", value))
    if multiline:
        cleaned = _NEWLINES.sub("\n", cleaned)
    if required and _invisible(cleaned):
        raise _error(field, "must not be empty", ErrorCode.REQUIRED)
    if len(cleaned) > max_length:
        raise _error(field, f"must be at most {max_length} characters", ErrorCode.TOO_LONG)
    _refuse_unsafe_characters(field, cleaned, allowed="\n\t" if multiline else "")
    return cleaned


def opaque(field: str, value: str, *, max_length: int) -> str:
    """A client's opaque key (an idempotency key), kept exactly as sent: not trimmed or normalised, since it is
    compared byte for byte. It must hold something other than white space and no unsafe characters."""
    if not value.strip():
        raise _error(field, "must not be empty", ErrorCode.REQUIRED)
    if len(value) > max_length:
        raise _error(field, f"must be at most {max_length} characters", ErrorCode.TOO_LONG)
    _refuse_unsafe_characters(field, value, allowed="")
    return value


def token(field: str, value: str, *, max_length: int) -> str:
    """An identifier issued by a provider (``pm_card_visa``): ASCII letters, digits, ``_`` and ``-``; trimmed."""
    cleaned = value.strip()
    if not cleaned:
        raise _error(field, "must not be empty", ErrorCode.REQUIRED)
    if len(cleaned) > max_length:
        raise _error(field, f"must be at most {max_length} characters", ErrorCode.TOO_LONG)
    if not _TOKEN.fullmatch(cleaned):
        raise _error(field, "may contain only ASCII letters, digits, '_' and '-'", ErrorCode.INVALID)
    return cleaned


def search(field: str, value: str) -> str:
    """Text to search stored text for: anything that could be stored (NUL, lone surrogates cannot)."""
    try:
        value.encode("utf-8")  # fails on a lone surrogate
    except UnicodeEncodeError:
        raise _error(field, "must not contain lone surrogates", ErrorCode.INVALID) from None
    if "\x00" in value:
        raise _error(field, "must not contain NUL", ErrorCode.INVALID)
    return value


def email(field: str, value: str, *, max_length: int) -> str:
    """A syntactically valid address (no DNS lookups), normalised and lower-cased for uniqueness.

    Internationalised addresses are accepted; compatibility characters in the local part (full-width letters,
    ligatures) are refused, since they would make a look-alike of another address. The domain is IDNA-mapped
    (a full-width domain becomes its ASCII form).
    """
    raw = unicodedata.normalize("NFC", value).strip()
    if not raw:
        raise _error(field, "must not be empty", ErrorCode.REQUIRED)
    if len(raw) > max_length:  # before parsing: the validator's work stays bounded
        raise _error(field, f"must be at most {max_length} characters", ErrorCode.TOO_LONG)
    try:
        result = validate_email(raw, check_deliverability=False)
    except EmailNotValidError as exc:
        raise _error(field, f"is not a valid email address: {exc}", ErrorCode.INVALID_EMAIL) from exc
    if unicodedata.normalize("NFKC", result.local_part) != result.local_part:
        problem = "must not contain compatibility characters (such as full-width letters) before the @-sign"
        raise _error(field, problem, ErrorCode.INVALID_EMAIL)
    normalized = result.normalized.lower()
    if len(normalized) > max_length:
        raise _error(field, f"must be at most {max_length} characters", ErrorCode.TOO_LONG)
    return normalized


def integer(field: str, value: int, *, minimum: int = 0, maximum: int = MAX_INT32) -> int:
    if not minimum <= value <= maximum:
        raise _error(field, f"must be between {minimum} and {maximum}", ErrorCode.OUT_OF_RANGE)
    return value


def count(field: str, size: int, *, minimum: int, maximum: int) -> int:
    """The number of items of a list input: REQUIRED when there are too few (none), OUT_OF_RANGE when too many."""
    if size < minimum:
        raise _error(field, f"needs at least {minimum} item(s)", ErrorCode.REQUIRED)
    if size > maximum:
        raise _error(field, f"takes at most {maximum} items", ErrorCode.OUT_OF_RANGE)
    return size


def currency(field: str, value: str) -> str:
    code = value.strip().upper()
    if not is_known_currency(code):
        raise _error(field, "must be a supported ISO 4217 code", ErrorCode.INVALID_CURRENCY)
    return code


def _error(field: str, problem: str, code: ErrorCode) -> UserInputError:
    return UserInputError(field, f"{_label(field)} {problem}", code=code)


def _label(field: str) -> str:
    """How messages name a field: as the client spells it (``idempotency_key`` is ``idempotencyKey``)."""
    head, *rest = field.split("_")
    return head + "".join(part.title() for part in rest)


def _trim(value: str) -> str:
    """`value` without white space and zero-width characters at either end (linear, unlike a regex over ``$``)."""
    start, end = 0, len(value)
    while start < end and (value[start].isspace() or value[start] in ZERO_WIDTH):
        start += 1
    while end > start and (value[end - 1].isspace() or value[end - 1] in ZERO_WIDTH):
        end -= 1
    return value[start:end]


def _invisible(value: str) -> bool:
    return all(ch.isspace() or unicodedata.category(ch) == "Cf" for ch in value)


def _refuse_unsafe_characters(field: str, value: str, *, allowed: str) -> None:
    for ch in value:
        category = unicodedata.category(ch)
        if category == "Cc" and ch not in allowed:
            reason = "control characters"
        elif category == "Cs":
            reason = "lone surrogates"
        elif ch in BIDI_CONTROLS:
            reason = "bidirectional override or isolate characters"
        elif ch in LINE_SEPARATORS and "\n" not in allowed:
            reason = "line breaks"
        else:
            continue
        raise _error(field, f"must not contain {reason} (U+{ord(ch):04X})", ErrorCode.INVALID)


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
