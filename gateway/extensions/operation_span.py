"""One span per GraphQL operation, with `graphql.parse`, `graphql.validate` and `graphql.execute` inside it.

Installed only when tracing is on (`gateway.observability.tracing`). Named as OpenTelemetry's GraphQL conventions
say, ``{type} {name}`` (``query Orders``; ``GraphQL Operation`` before the document is known), with
`graphql.operation.name` and `graphql.operation.type`. Never the document or the variables: they may hold personal
data. Unlike Strawberry's `OpenTelemetryExtension` there is no span per resolved field (Q1 resolves ~2,000);
loader batches and SQL statements, which are what a field costs, get spans of their own inside `graphql.execute`.
"""

from __future__ import annotations

from collections.abc import Iterator

from graphql import GraphQLError
from opentelemetry.trace import Span, Status, StatusCode, Tracer
from strawberry.extensions import SchemaExtension

UNKNOWN_OPERATION = "GraphQL Operation"


class OperationSpan(SchemaExtension):
    def __init__(self, tracer: Tracer) -> None:
        super().__init__()
        self.tracer = tracer

    def on_operation(self) -> Iterator[None]:
        with self.tracer.start_as_current_span(UNKNOWN_OPERATION) as span:
            yield
            self._describe(span)

    def on_parse(self) -> Iterator[None]:
        with self.tracer.start_as_current_span("graphql.parse"):
            yield

    def on_validate(self) -> Iterator[None]:
        with self.tracer.start_as_current_span("graphql.validate"):
            yield

    def on_execute(self) -> Iterator[None]:
        with self.tracer.start_as_current_span("graphql.execute"):
            yield

    def _describe(self, span: Span) -> None:
        context = self.execution_context
        name = context.operation_name
        try:
            kind: str | None = context.operation_type.value
        except Exception:  # no document (a syntax error) or no such operation: a request error, told elsewhere
            kind = None
        if kind is not None:
            span.set_attribute("graphql.operation.type", kind)
            span.update_name(f"{kind} {name}" if name else kind)
        if name:
            span.set_attribute("graphql.operation.name", name)
        errors = list(context.pre_execution_errors or ())
        if context.result is not None and context.result.errors:
            errors.extend(context.result.errors)
        if errors:
            span.set_status(Status(StatusCode.ERROR, ", ".join(sorted({_code(error) for error in errors}))))


def _code(error: GraphQLError) -> str:
    """The error's `extensions.code` (its message may quote the client's input)."""
    code = (error.extensions or {}).get("code")
    return str(code) if code else "ERROR"
