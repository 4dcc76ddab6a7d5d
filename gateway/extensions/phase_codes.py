"""Tag validation failures with ``GRAPHQL_VALIDATION_FAILED``.

Strawberry reports a validation failure like any other pre-execution error (``data: null`` plus errors);
clients need to tell it apart from bad variables, so it gets its own ``extensions.code``. (Syntax errors are
recognised by their type, `GraphQLSyntaxError`, where errors are formatted.) `PreparedDocuments` tags them after
validation; a code already set (a limit's) is kept.
"""

from __future__ import annotations

from graphql import GraphQLError

VALIDATION_FAILED = "GRAPHQL_VALIDATION_FAILED"


def tag_validation_failures(errors: list[GraphQLError] | None) -> None:
    for error in errors or ():
        extensions = dict(error.extensions or {})
        extensions.setdefault("code", VALIDATION_FAILED)
        error.extensions = extensions
