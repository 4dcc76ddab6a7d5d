"""Tag errors found before execution with the phase that found them.

Strawberry reports a syntax error and a validation failure the same way (``data: null`` plus errors); clients
and the HTTP layer need to tell them apart, so each gets an ``extensions.code``.
"""

from __future__ import annotations

from collections.abc import Iterator

from graphql import GraphQLError
from strawberry.extensions import SchemaExtension

PARSE_FAILED = "GRAPHQL_PARSE_FAILED"
VALIDATION_FAILED = "GRAPHQL_VALIDATION_FAILED"


class PhaseCodes(SchemaExtension):
    def on_parse(self) -> Iterator[None]:
        yield
        _tag(self.execution_context.pre_execution_errors, PARSE_FAILED)

    def on_validate(self) -> Iterator[None]:
        yield
        _tag(self.execution_context.pre_execution_errors, VALIDATION_FAILED)


def _tag(errors: list[GraphQLError] | None, code: str) -> None:
    for error in errors or ():
        extensions = dict(error.extensions or {})
        extensions.setdefault("code", code)
        error.extensions = extensions
