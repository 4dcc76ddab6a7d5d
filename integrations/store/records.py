"""Read-only copies of rows, for the loaders that read many of them.

An ORM entity costs about 7 µs a row to load (instance state, identity map, SQLModel's set-up); a 50-order page
with its customers, lines and products loads 350 of them. A record is a slotted dataclass built from a Core row
in about 1 µs. Records are for reading only: writes load the models, in a transaction.

A record's fields are its table's columns, in order (tests compare them with the models, and the models with the
migrations), and its `__tablename__` and `id` give the response cache the entity tags it gives an entity
(`tags.read_tags`). After a write, the request's loaders forget the records they hold (`StoreSession.after_write`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields
from datetime import datetime
from functools import cache
from typing import Any, ClassVar, Protocol, TypeVar

from sqlalchemy import JSON, Integer, Select, Table, any_, bindparam, func, select
from sqlalchemy.dialects.postgresql import ARRAY

from integrations.store.direct import DIRECT, DIRECT_BY_SHAPE
from integrations.store.models import Base
from integrations.store.tags import BY_PRIMARY_KEY


class Record(Protocol):
    __tablename__: ClassVar[str]

    @property
    def id(self) -> int: ...


R = TypeVar("R", bound=Record)
P = TypeVar("P", bound=Record)


@dataclass(frozen=True, slots=True)
class CustomerRecord:
    __tablename__: ClassVar[str] = "customer"
    id: int
    email: str
    name: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class ProductRecord:
    __tablename__: ClassVar[str] = "product"
    id: int
    sku: str
    name: str
    description: str
    price: int
    currency: str
    stock: int
    created_at: datetime


@dataclass(frozen=True, slots=True)
class OrderRecord:
    __tablename__: ClassVar[str] = "order"
    id: int
    number: str
    customer_id: int
    status: str
    total: int
    currency: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class OrderLineRecord:
    __tablename__: ClassVar[str] = "order_line"
    id: int
    order_id: int
    product_id: int
    quantity: int
    unit_price: int


def table_of(record: type[Record]) -> Table:
    return Base.metadata.tables[record.__tablename__]


def select_records(record: type[Record]) -> Select[Any]:
    """SELECT the record's columns in its field order, so that each result row builds one with `record(*row)`."""
    return select(*_columns(record))


def as_records(statement: Select[Any]) -> tuple[Select[Any], type[Record]] | None:
    """`select(Model)…` (filters, order, limit) selecting the columns of `Model`'s record instead, with that
    record; None when the statement selects anything else or `Model` has no record. It is marked
    `DIRECT_BY_SHAPE`: the store runs it on the driver itself when it can (`direct.py`)."""
    descriptions = statement.column_descriptions
    if len(descriptions) != 1:
        return None
    entity = descriptions[0]["entity"]
    if entity is None or descriptions[0]["expr"] is not entity or descriptions[0]["aliased"]:
        return None  # a column or an expression, not whole rows; or an alias, whose columns are not the table's
    record = BY_TABLE.get(str(getattr(entity, "__tablename__", "")))
    if record is None or table_of(record) is not getattr(entity, "__table__", None):
        return None
    return statement.with_only_columns(*_columns(record)).execution_options(**{DIRECT_BY_SHAPE: True}), record


KEYS = "keys"


@cache
def select_by_keys(record: type[Record], column: str, dialect: str) -> Select[Any]:
    """SELECT the records whose `column` is one of the statement's `keys` parameter (a list, given at execution):
    one statement object per record, column and dialect, so nothing is built, coerced or keyed for the cache per
    batch, and the same SQL text (and prepared statement) serves any number of keys. PostgreSQL gets
    ``column = ANY(:keys)`` with one array parameter, SQLite ``column IN (SELECT value FROM json_each(:keys))`` with
    one JSON array for an integer column: an ``IN`` with a placeholder per key (what other columns get) is
    rendered anew for every batch, 0.2-0.45 ms more for 50-150 keys. Those constant statements are marked `DIRECT`:
    the store runs them on the driver itself when it can (`direct.py`)."""
    return _by_keys(select_records(record), record, column, dialect)


@cache
def select_with_parent_by_id(record: type[Record], parent: type[Record], foreign_key: str, dialect: str) -> Select[Any]:
    """`select_by_keys(record, "id", dialect)` joined with each row's parent (`record.foreign_key` is the parent's
    id): the record's columns, then the parent's, for `with_parent` to split. One statement instead of one for the
    records and another for their parents; NOT NULL foreign keys only (an inner join drops a row without one)."""
    child, table = table_of(record), table_of(parent)
    joined = select(*_columns(record), *_columns(parent)).join_from(child, table, child.c[foreign_key] == table.c.id)
    return _by_keys(joined, record, "id", dialect).execution_options(**{BY_PRIMARY_KEY: (child.name, table.name)})


def with_parent(record: type[R], parent: type[P]) -> Callable[..., tuple[R, P]]:
    """Build `(record, parent)` from a row of `select_with_parent_by_id(record, parent, ...)`."""
    size = len(fields(record))  # type: ignore[arg-type]

    def build(*row: Any) -> tuple[R, P]:
        return record(*row[:size]), parent(*row[size:])

    return build


def _by_keys(statement: Select[Any], record: type[Record], column: str, dialect: str) -> Select[Any]:
    """`statement` restricted to the rows whose `column` is one of the `keys` (see `select_by_keys`)."""
    target = table_of(record).c[column]
    direct = True
    if dialect == "postgresql":
        condition = target == any_(bindparam(KEYS, type_=ARRAY(target.type)))
    elif dialect == "sqlite" and isinstance(target.type, Integer):  # json_each's values compare as JSON's types
        keys = func.json_each(bindparam(KEYS, type_=JSON)).table_valued("value")
        condition = target.in_(select(keys.c.value))
    else:
        condition = target.in_(bindparam(KEYS, expanding=True))
        direct = False  # rendered anew for each batch by SQLAlchemy: nothing to run directly
    statement = statement.where(condition).execution_options(**{DIRECT: direct})
    if target.primary_key:  # the response cache's tags: a lookup by primary key, not a listing
        statement = statement.execution_options(**{BY_PRIMARY_KEY: (target.table.name,)})
    return statement


def _columns(record: type[Record]) -> list[Any]:
    table = table_of(record)
    return [table.c[field.name] for field in fields(record)]  # type: ignore[arg-type]


BY_TABLE: dict[str, type[Record]] = {
    record.__tablename__: record for record in (CustomerRecord, ProductRecord, OrderRecord, OrderLineRecord)
}
