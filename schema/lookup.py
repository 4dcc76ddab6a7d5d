"""The two shapes every root query takes: one object by global ID, and a filtered connection."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Protocol, TypeVar

from sqlalchemy import Select

from resolvers.pagination import count, fetch_page
from schema.context import Info
from schema.ids import decode_typed_id
from schema.pagination import Connection, page_request, to_connection

RowT = TypeVar("RowT", bound="_Row")
RowT_co = TypeVar("RowT_co", covariant=True)
NodeT = TypeVar("NodeT")


class _Row(Protocol):
    @property
    def id(self) -> int | None: ...


class _Loader(Protocol[RowT_co]):
    def load(self, key: int) -> Awaitable[RowT_co | None]: ...


async def by_global_id(
    global_id: str,
    type_name: str,
    loader: _Loader[RowT],
    convert: Callable[[RowT], NodeT],
    visible: Callable[[RowT], bool] | None = None,
) -> NodeT | None:
    """The object, or None when there is none or `visible` says the principal may not see it (the same answer:
    no existence leak)."""
    row = await loader.load(decode_typed_id(global_id, type_name))
    if row is None or (visible is not None and not visible(row)):
        return None
    return convert(row)


async def connection(
    info: Info,
    statement: Select[RowT],
    key: Any,
    convert: Callable[[RowT], NodeT],
    *,
    first: int | None,
    after: str | None,
    last: int | None,
    before: str | None,
) -> Connection[NodeT]:
    request = page_request(first=first, after=after, last=last, before=before)
    store = info.context.store
    page = await fetch_page(store, statement, key, request)
    return to_connection(page, convert, key=lambda row: row.id or 0, count=lambda: count(store, statement))
