"""Turn database constraint violations into the `UserInputError`s a client can act on.

The database is the arbiter of uniqueness (a pre-check would race with a concurrent insert), so writes run
inside `reporting_duplicates` and a unique violation becomes a DUPLICATE error on the right field.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.exc import IntegrityError

from integrations.errors import ErrorCode, InputErrors, UserInputError


@contextmanager
def reporting_duplicates(table: str, *columns: str) -> Iterator[None]:
    try:
        yield
    except IntegrityError as exc:
        text = str(exc.orig)
        for column in columns:
            if f"uq_{table}_{column}" in text or f"UNIQUE constraint failed: {table}.{column}" in text:
                message = f"a {table} with this {column} already exists"
                raise InputErrors([UserInputError(column, message, code=ErrorCode.DUPLICATE)]) from None
        raise


def not_found(kind: str) -> InputErrors:
    return InputErrors([UserInputError("id", f"no {kind} with this id", code=ErrorCode.NOT_FOUND)])
