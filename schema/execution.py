"""Run a prepared query operation on graphql-core directly, with the gateway's executor.

`Schema.execute` wraps every operation in Strawberry's machinery: an execution context, each extension made
anew and its hooks wrapped in context managers, a middleware manager, the result converted. For a small query
that is about a sixth of its CPU. The gateway's endpoint already holds what those hooks would produce for a
query whose document it has parsed and validated (`gateway.documents`), so it runs such a query here: the same
graphql-core `execute`, the same executor class and arguments Strawberry passes, the same error processing.

Only for queries: a mutation goes through `Schema.execute`, whose `AuditLog` extension records it, and so does
every document that is invalid, over a limit or ambiguous, so that Strawberry's extensions report it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeGuard, cast

from graphql import DocumentNode, GraphQLError, execute
from graphql import ExecutionResult as GraphQLExecutionResult
from strawberry import Schema
from strawberry.execution import optimized_is_awaitable
from strawberry.types.execution import ExecutionResult
from strawberry.utils.await_maybe import await_maybe

from schema.context import Context
from schema.executor import Executor, SharedPlans


async def execute_query(
    schema: Schema,
    document: DocumentNode,
    *,
    operation_name: str | None,
    variables: dict[str, Any] | None,
    context: Context,
    operation_extensions: dict[str, Any] | None,
    plans: SharedPlans | None = None,
) -> ExecutionResult:
    """The result of the operation `operation_name` of `document`, a valid document (validated against
    `schema`) whose operation is a query. Errors are passed to `schema.process_errors`, as Strawberry does.
    `plans`: the operation's plans kept from its earlier requests (`SharedPlans`), when the caller keeps them and
    the schema executes with the gateway's `Executor`."""
    executor_class = schema.execution_context_class
    custom: dict[str, Any] = {"plans": plans} if issubclass(executor_class, Executor) else {}
    context.plans = plans
    try:
        result = await await_maybe(
            execute(
                schema._schema,
                document,
                context_value=context,
                variable_values=variables,
                operation_name=operation_name,
                executor_class=executor_class,
                is_awaitable=cast("Callable[[Any], TypeGuard[Awaitable[Any]]]", optimized_is_awaitable),
                operation_extensions=operation_extensions,
                **custom,
            )
        )
    except Exception as error:  # as Strawberry does: the operation's error, not the server's
        failure = error if isinstance(error, GraphQLError) else GraphQLError(str(error), original_error=error)
        result = GraphQLExecutionResult(None, [failure])
    if result.errors:
        schema.process_errors(result.errors)
    return ExecutionResult(data=result.data, errors=result.errors)
