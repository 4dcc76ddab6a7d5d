"""Keyset pagination over a table's integer primary key, for Relay cursor connections.

Pages are fetched with ``WHERE id > :after ORDER BY id LIMIT first + 1`` (or the mirror image for
``last``/``before``): stable under concurrent inserts, and index-only work however deep the page.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy import Select, func, select

from integrations.errors import ErrorCode, UserInputError
from integrations.store.records import as_records
from integrations.store.session import StoreSession

T = TypeVar("T")

MAX_PAGE_SIZE = 100
DEFAULT_PAGE_SIZE = 20


@dataclass(frozen=True)
class PageRequest:
    """Decoded connection arguments. `after`/`before` are primary keys, not cursors."""

    first: int | None = None
    after: int | None = None
    last: int | None = None
    before: int | None = None

    def __post_init__(self) -> None:
        if self.first is not None and self.last is not None:
            raise UserInputError("last", "pass either `first` or `last`, not both", code=ErrorCode.INVALID)
        for name in ("first", "last"):
            value = getattr(self, name)
            if value is not None and not 0 <= value <= MAX_PAGE_SIZE:
                raise UserInputError(
                    name,
                    f"`{name}` must be between 0 and {MAX_PAGE_SIZE} (got {value})",
                    code=ErrorCode.PAGE_SIZE_EXCEEDED,
                )

    @property
    def backwards(self) -> bool:
        return self.last is not None

    @property
    def size(self) -> int:
        if self.last is not None:
            return self.last
        return DEFAULT_PAGE_SIZE if self.first is None else self.first


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    has_next_page: bool
    has_previous_page: bool


def page_statement(statement: Select[T], key: Any, request: PageRequest) -> Select[T]:
    """Restrict `statement` to one page (plus one row to learn whether another page exists)."""
    if request.after is not None:
        statement = statement.where(key > request.after)
    if request.before is not None:
        statement = statement.where(key < request.before)
    order = key.desc() if request.backwards else key.asc()
    return statement.order_by(order).limit(request.size + 1)


def to_page(rows: list[T], request: PageRequest) -> Page[T]:
    """Turn the rows of `page_statement` into a page.

    Relay lets a forward page report ``hasPreviousPage`` as true when it cannot tell cheaply; an `after` cursor
    points at a row the client has seen, so a previous page exists. The mirror holds for ``before``.
    """
    more = len(rows) > request.size
    items = rows[: request.size]
    if request.backwards:
        items.reverse()
        return Page(items, has_next_page=request.before is not None, has_previous_page=more)
    return Page(items, has_next_page=more, has_previous_page=request.after is not None)


async def fetch_page(store: StoreSession, statement: Select[T], key: Any, request: PageRequest) -> Page[Any]:
    """The page's rows: what `statement` selects, or, when it selects a model that has records
    (`integrations/store/records.py`), their read-only copies (same attributes, built faster)."""
    paged = page_statement(statement, key, request)
    as_record = as_records(paged)
    if as_record is not None:
        return to_page(await store.records(*as_record), request)
    return to_page(await store.scalars(paged), request)


async def count(store: StoreSession, statement: Select[Any]) -> int:
    """Rows matched by `statement`'s filters, ignoring its ordering and limits."""
    subquery = statement.order_by(None).limit(None).offset(None).subquery()
    return (await store.scalar(select(func.count()).select_from(subquery))) or 0
