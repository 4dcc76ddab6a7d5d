"""Report buckets (day, ISO week, month in UTC), computed the same way in SQL and in Python.

`truncate(interval, column)` is a SQL expression for the first day of the bucket holding a UTC timestamp, and it
compiles per dialect: ``date_trunc`` on PostgreSQL (whose weeks start on Monday, as ISO 8601's do), ``date()``
with modifiers on SQLite (which stores UTC timestamps as text). `floor` is the same rule for Python dates, and
`starts` lists every bucket of a period, so a bucket without sales still gets its (empty) row.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Any, ClassVar

from sqlalchemy import Date
from sqlalchemy.exc import CompileError
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Mapped
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.functions import FunctionElement


class Interval(StrEnum):
    DAY = "DAY"
    WEEK = "WEEK"
    MONTH = "MONTH"


def floor(interval: Interval, day: date) -> date:
    """The first day of the bucket holding `day`: itself, the Monday of its ISO week, or the 1st of its month."""
    if interval is Interval.WEEK:
        return day - timedelta(days=day.weekday())
    if interval is Interval.MONTH:
        return day.replace(day=1)
    return day


def advance(interval: Interval, start: date) -> date:
    """The first day of the bucket after the one starting on `start`."""
    if interval is Interval.WEEK:
        return start + timedelta(days=7)
    if interval is Interval.MONTH:
        return date(start.year + start.month // 12, start.month % 12 + 1, 1)
    return start + timedelta(days=1)


def starts(interval: Interval, start: datetime, end: datetime) -> list[date]:
    """First days of every bucket overlapping [start, end) (UTC datetimes, start < end), oldest first."""
    current = floor(interval, start.date())
    last = floor(interval, (end - timedelta(microseconds=1)).date())
    found = [current]
    while current < last:
        current = advance(interval, current)
        found.append(current)
    return found


class _Truncate(FunctionElement[date]):
    """First day of the bucket of a UTC timestamp column; one subclass per interval, so each caches apart."""

    type = Date()
    inherit_cache = True
    interval: ClassVar[Interval]


class _DayStart(_Truncate):
    inherit_cache = True
    interval = Interval.DAY


class _WeekStart(_Truncate):
    inherit_cache = True
    interval = Interval.WEEK


class _MonthStart(_Truncate):
    inherit_cache = True
    interval = Interval.MONTH


_CONSTRUCTS: dict[Interval, type[_Truncate]] = {
    Interval.DAY: _DayStart,
    Interval.WEEK: _WeekStart,
    Interval.MONTH: _MonthStart,
}
_SQLITE_MODIFIERS = {
    Interval.DAY: "",
    Interval.WEEK: ", 'weekday 0', '-6 days'",  # on to the week's Sunday (or stay), then back to its Monday
    Interval.MONTH: ", 'start of month'",
}


def truncate(interval: Interval, column: ColumnElement[datetime] | Mapped[datetime]) -> ColumnElement[date]:
    """SQL for the first day (a DATE) of the `interval` bucket holding `column`, a UTC timestamp."""
    return _CONSTRUCTS[interval](column)


@compiles(_Truncate, "postgresql")
def _postgresql(element: _Truncate, compiler: SQLCompiler, **kw: Any) -> str:
    # The unit is a literal, not a bound parameter: PostgreSQL only matches a GROUP BY expression to the select
    # list when both are the same text, and two bound parameters are two different expressions to it.
    column = compiler.process(element.clauses, **kw)
    return f"CAST(date_trunc('{element.interval.value.lower()}', timezone('UTC', {column})) AS DATE)"


@compiles(_Truncate, "sqlite")
def _sqlite(element: _Truncate, compiler: SQLCompiler, **kw: Any) -> str:
    column = compiler.process(element.clauses, **kw)
    return f"date({column}{_SQLITE_MODIFIERS[element.interval]})"


@compiles(_Truncate)
def _other(element: _Truncate, compiler: SQLCompiler, **kw: Any) -> str:
    raise CompileError(f"report buckets are not implemented for {compiler.dialect.name}")
