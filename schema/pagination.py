"""Relay cursor connections: `edges { cursor node }`, `pageInfo` and a lazily counted `totalCount`."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Generic, TypeVar

import strawberry

from resolvers.pagination import MAX_PAGE_SIZE, Page, PageRequest
from schema.cache_control import INHERIT
from schema.ids import decode_cursor, encode_cursor

NodeT = TypeVar("NodeT")
RowT = TypeVar("RowT")


@strawberry.type(description="Where a page sits in the whole list (Relay PageInfo).", directives=[INHERIT])
class PageInfo:
    has_next_page: bool = strawberry.field(description="Whether more items follow this page.")
    has_previous_page: bool = strawberry.field(description="Whether items precede this page.")
    start_cursor: str | None = strawberry.field(description="Cursor of the first item of the page.")
    end_cursor: str | None = strawberry.field(description="Cursor of the last item of the page.")


@strawberry.type(description="One item of a connection with its cursor.", directives=[INHERIT])
class Edge(Generic[NodeT]):
    cursor: str = strawberry.field(description="Opaque cursor to pass as `after`/`before`.")
    node: NodeT = strawberry.field(description="The item.")


@strawberry.type(
    description="A page of a list, with cursors to move through it (Relay Cursor Connections).", directives=[INHERIT]
)
class Connection(Generic[NodeT]):
    edges: list[Edge[NodeT]] = strawberry.field(description="The items of this page with their cursors.")
    page_info: PageInfo = strawberry.field(description="Information to fetch the next or previous page.")
    count: strawberry.Private[Callable[[], Awaitable[int]]]

    @strawberry.field(description="How many items the whole list holds (counted only when asked for).")
    async def total_count(self) -> int:
        return await self.count()


def page_request(
    *, first: int | None, after: str | None, last: int | None = None, before: str | None = None
) -> PageRequest:
    return PageRequest(
        first=first,
        after=decode_cursor(after, field="after"),
        last=last,
        before=decode_cursor(before, field="before"),
    )


def to_connection(
    page: Page[RowT],
    convert: Callable[[RowT], NodeT],
    key: Callable[[RowT], int],
    count: Callable[[], Awaitable[int]],
) -> Connection[NodeT]:
    edges = [Edge(cursor=encode_cursor(key(row)), node=convert(row)) for row in page.items]
    return Connection(
        edges=edges,
        page_info=PageInfo(
            has_next_page=page.has_next_page,
            has_previous_page=page.has_previous_page,
            start_cursor=edges[0].cursor if edges else None,
            end_cursor=edges[-1].cursor if edges else None,
        ),
        count=count,
    )


First = Annotated[
    int | None,
    strawberry.argument(description=f"Return the first n items (0 to {MAX_PAGE_SIZE}; default 20)."),
]
After = Annotated[str | None, strawberry.argument(description="Return items after this cursor.")]
Last = Annotated[int | None, strawberry.argument(description=f"Return the last n items (0 to {MAX_PAGE_SIZE}).")]
Before = Annotated[str | None, strawberry.argument(description="Return items before this cursor.")]
