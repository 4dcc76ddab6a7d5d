"""Refuse a document with several operations and no `operationName` (GraphQL spec, GetOperation()).

Strawberry silently runs the first operation instead; a client that forgot `operationName` would get the
wrong operation's data. The check runs in `on_execute`, after parsing and validation, and short-circuits
execution with a request error (HTTP 400) the way caching extensions do.
"""

from __future__ import annotations

from collections.abc import Iterator

from graphql import ExecutionResult, GraphQLError, OperationDefinitionNode
from strawberry.extensions import SchemaExtension

MESSAGE = "Must provide operation name if query contains multiple operations."


class RequireOperationName(SchemaExtension):
    def on_execute(self) -> Iterator[None]:
        context = self.execution_context
        document = context.graphql_document
        # Strawberry keeps the client's own value here; `operation_name` falls back to the first operation.
        provided = getattr(context, "_provided_operation_name", None)
        if provided is None and document is not None:
            operations = sum(isinstance(d, OperationDefinitionNode) for d in document.definitions)
            if operations > 1:
                context.result = ExecutionResult(data=None, errors=[GraphQLError(MESSAGE)])
        yield
