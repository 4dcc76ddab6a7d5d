"""Refuse a document with several operations and no `operationName` (GraphQL spec, GetOperation()).

Strawberry silently runs the first operation instead; a client that forgot `operationName` would get the
wrong operation's data. `PreparedDocuments` runs the check in its `on_execute`, after parsing and validation,
and it short-circuits execution with a request error (HTTP 400) the way caching extensions do.
"""

from __future__ import annotations

from graphql import ExecutionResult, GraphQLError, OperationDefinitionNode
from strawberry.types import ExecutionContext

MESSAGE = "Must provide operation name if query contains multiple operations."


def require_operation_name(context: ExecutionContext) -> None:
    """Set the refusal as the operation's result when the document holds several operations and none was named."""
    document = context.graphql_document
    # Strawberry keeps the client's own value here; `operation_name` falls back to the first operation.
    provided = getattr(context, "_provided_operation_name", None)
    if provided is None and document is not None:
        operations = sum(isinstance(d, OperationDefinitionNode) for d in document.definitions)
        if operations > 1:
            context.result = ExecutionResult(data=None, errors=[GraphQLError(MESSAGE)])
