"""Name what a statement reads or writes as cache tags, so cached responses can be dropped when rows change.

Three tags per table (``order`` here):

- ``order:42``: that row. Recorded for every row a read returns; written when row 42 changes.
- ``order:*``: which rows a listing holds. Recorded by reads that are not lookups by primary key (pages,
  counts, children by foreign key); written by every insert, delete and update of the table, since an update
  may move a row into or out of a filtered list.
- ``order:#``: anything of the table. Recorded by every read of it; written only by a change whose rows
  cannot be told (an UPDATE whose WHERE does not pin primary keys).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import Table
from sqlalchemy.sql import ClauseElement, Executable, operators
from sqlalchemy.sql.dml import UpdateBase
from sqlalchemy.sql.elements import BinaryExpression, BindParameter, BooleanClauseList, ColumnClause
from sqlalchemy.sql.util import find_tables

BY_PRIMARY_KEY = "gateway_by_primary_key"
"""Execution option of a SELECT that looks rows up by primary key in a way `read_tags` cannot read off its WHERE
(``id = ANY(:keys)``): the names of the tables it reads that way, the table looked up and, for a lookup joined with
each row's parent through a foreign key, the parent's. They get no listing tag (a new row changes neither answer; a
changed row, its entity tag); any other table the statement reads does."""


def entity(table: str, pk: object) -> str:
    return f"{table}:{pk}"


def listing(table: str) -> str:
    return f"{table}:*"


def anything(table: str) -> str:
    return f"{table}:#"


def read_tags(statement: Executable, rows: Iterable[Any] = (), parameters: Mapping[str, Any] | None = None) -> set[str]:
    """Tags of a SELECT (run with `parameters`, if any) and the ORM rows or records it returned (pairs of records
    for a lookup joined with its parent)."""
    tags: set[str] = set()
    assert isinstance(statement, ClauseElement)
    tables = {table.name: table for table in find_tables(statement) if isinstance(table, Table)}
    pinned = set(statement.get_execution_options().get(BY_PRIMARY_KEY, ()))
    if len(tables) == 1 and not pinned:  # a lookup marked as one needs no reading of its WHERE
        (only,) = tables.values()
        if _pinned(getattr(statement, "whereclause", None), only, parameters or {}) is not None:
            pinned.add(only.name)
    for name in tables:
        tags.add(anything(name))
        if name not in pinned:
            tags.add(listing(name))
    for row in rows:
        for item in row if type(row) is tuple else (row,):
            table_name = getattr(item, "__tablename__", None)
            pk = getattr(item, "id", None)
            if table_name is not None and pk is not None:
                tags.add(entity(table_name, pk))
    return tags


def write_tags(statement: UpdateBase) -> set[str]:
    """Tags an INSERT, UPDATE or DELETE statement invalidates."""
    table = statement.table
    if not isinstance(table, Table):
        return set()
    tags = {listing(table.name)}
    if statement.is_insert:
        return tags
    pks = _pinned(getattr(statement, "whereclause", None), table, {})
    if pks is None:
        tags.add(anything(table.name))
    else:
        tags.update(entity(table.name, pk) for pk in pks)
    return tags


def row_tags(row: object) -> set[str]:
    """Tags of an ORM object the unit of work inserted, updated or deleted."""
    name = getattr(row, "__tablename__", None)
    if name is None:
        return set()
    pk = getattr(row, "id", None)
    return {listing(name)} if pk is None else {listing(name), entity(name, pk)}


def _pinned(where: ClauseElement | None, table: Table, parameters: Mapping[str, Any]) -> list[Any] | None:
    """The primary keys `where` restricts the statement to (``id = :x``, ``id IN (…)``, under AND, their values
    bound in the statement or given in `parameters`), or None."""
    if where is None:
        return None
    primary = list(table.primary_key.columns)
    if len(primary) != 1:
        return None
    name = primary[0].name
    clauses = (
        list(where.clauses) if isinstance(where, BooleanClauseList) and where.operator is operators.and_ else [where]
    )
    for clause in clauses:
        if not isinstance(clause, BinaryExpression):
            continue
        left, right = clause.left, clause.right
        if not (
            isinstance(left, ColumnClause) and getattr(left.table, "name", None) == table.name and left.name == name
        ):
            continue
        if not isinstance(right, BindParameter):
            continue
        if right.key in parameters:
            value = parameters[right.key]
        elif right.required:  # its value comes with the execution, and none came here: the keys are unknown
            return None
        else:
            value = right.effective_value
        if clause.operator is operators.eq:
            return [value]
        if clause.operator is operators.in_op and right.expanding:
            return list(value or ())
    return None
