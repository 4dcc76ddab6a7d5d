"""Tag validation failures with ``GRAPHQL_VALIDATION_FAILED``.

Strawberry reports a validation failure like any other pre-execution error (``data: null`` plus errors);
clients need to tell it apart from bad variables, so it gets its own ``extensions.code``. (Syntax errors are
recognised by their type, `GraphQLSyntaxError`, where errors are formatted.)
"""

from __future__ import annotations

from collections.abc import Iterator

from graphql import GraphQLError
from strawberry.extensions import SchemaExtension

VALIDATION_FAILED = "GRAPHQL_VALIDATION_FAILED"


class PhaseCodes(SchemaExtension):
    def on_validate(self) -> Iterator[None]:
        yield
        _tag(self.execution_context.pre_execution_errors, VALIDATION_FAILED)


def _tag(errors: list[GraphQLError] | None, code: str) -> None:
    for error in errors or ():
        extensions = dict(error.extensions or {})
        extensions.setdefault("code", code)
        error.extensions = extensions
