"""Parsed and validated documents, cached by their text (bounded LRU) for every way a document arrives.

Plain requests, automatic persisted queries and trusted documents all end up as document text; the first
request for a text parses and validates it, later ones (on any path) reuse the result, its normalised hash
(the response cache's key) and its cache policy per operation. `PreparedDocuments` hands the cached parse and
validation to Strawberry so execution does not repeat them.

The abuse limits (`gateway.limits`) are part of preparing a document: the parser stops at the token limit,
and depth, aliases, directives and introspection are validation rules, so a cached document is not checked
again. Only the cost, which depends on the variables, is checked per request (before execution).
"""

from __future__ import annotations

import contextlib
import hashlib
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from graphql import (
    DocumentNode,
    GraphQLError,
    GraphQLSchema,
    GraphQLSyntaxError,
    OperationDefinitionNode,
    print_ast,
    specified_rules,
    validate,
)
from strawberry.extensions import SchemaExtension
from strawberry.schema.validation_rules.maybe_null import MaybeNullValidationRule
from strawberry.schema.validation_rules.one_of import OneOfInputValidationRule

from gateway.cache_policy import NOT_CACHEABLE, CacheHints, CachePolicy
from gateway.extensions.operation_name import require_operation_name
from gateway.extensions.phase_codes import tag_validation_failures
from gateway.limits import Limits
from gateway.limits.cost import OperationCost, cost_exceeded
from gateway.limits.suggestions import strip_suggestions
from gateway.limits.tokens import parse_within
from schema.executor import SharedPlans

STRAWBERRY_RULES = (MaybeNullValidationRule, OneOfInputValidationRule)
"""The rules Strawberry adds to the spec's (`strawberry.schema.schema.validate_document`)."""


@dataclass
class Document:
    text: str
    node: DocumentNode | None
    """None when the text is not valid GraphQL syntax (Strawberry reports the syntax error), or when it has
    more tokens than allowed (then `errors` holds that refusal)."""
    errors: list[GraphQLError]
    """Validation errors against the schema, limits included; empty for a valid document."""
    digest: str
    """SHA-256 of the normalised document (formatting and comments do not matter)."""
    schema: GraphQLSchema | None = None
    """The schema it was validated against."""
    _operations: dict[str, OperationDefinitionNode] = field(default_factory=dict)
    _only: OperationDefinitionNode | None = None
    _policies: dict[str | None, CachePolicy] = field(default_factory=dict)
    _costs: dict[str | None, OperationCost] = field(default_factory=dict)
    _plans: dict[int, SharedPlans] = field(default_factory=dict)

    @property
    def valid(self) -> bool:
        return self.node is not None and not self.errors

    def operation(self, name: str | None) -> OperationDefinitionNode | None:
        """The operation a request names (the only one when it names none), per the spec's GetOperation()."""
        return self._only if name is None else self._operations.get(name)

    def policy(self, name: str | None, hints: CacheHints) -> CachePolicy:
        if name not in self._policies:
            operation = self.operation(name)
            if operation is None or self.node is None or self.errors:
                return NOT_CACHEABLE  # not kept: a client's made-up operation names must not grow the entry
            self._policies[name] = hints.policy(self.node, operation)
        return self._policies[name]

    def plans(self, name: str | None) -> SharedPlans | None:
        """The executor's plans for the operation `name`, kept with the document across its requests (the same
        whether the request names the operation or not); None when it cannot run."""
        operation = self.operation(name)
        if operation is None or self.node is None or self.errors:
            return None
        plans = self._plans.get(id(operation))  # the document keeps its operations alive: their ids stay theirs
        if plans is None:
            plans = self._plans[id(operation)] = SharedPlans(self.node)
        return plans

    def cost(self, name: str | None, variables: Mapping[str, Any] | None = None) -> int:
        """What the operation `name` costs with the request's `variables` (`gateway.limits.cost` has the
        model); 0 when it cannot run. The part that does not depend on variables is computed once."""
        if name not in self._costs:
            operation = self.operation(name)
            if operation is None or self.node is None or self.errors or self.schema is None:
                return 0
            self._costs[name] = OperationCost(self.schema, self.node, operation)
        return self._costs[name](variables)


class Documents:
    def __init__(self, schema: GraphQLSchema, *, max_entries: int = 1_000, limits: Limits | None = None) -> None:
        self.schema = schema
        self.max_entries = max_entries
        self.limits = limits or Limits()
        self.rules = (*specified_rules, *STRAWBERRY_RULES, *self.limits.rules())
        self._entries: OrderedDict[str, Document] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def get(self, text: str) -> Document:
        document = self._entries.get(text)
        if document is not None:
            self.hits += 1
            self._entries.move_to_end(text)
            return document
        self.misses += 1
        document = self._prepare(text)
        if self.max_entries > 0:
            self._entries[text] = document
            if len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)
        return document

    def __len__(self) -> int:
        return len(self._entries)

    def refusals(self, document: Document, name: str | None, variables: Mapping[str, Any] | None) -> list[GraphQLError]:
        """Why the operation `name` of `document` may not run with `variables`: its validation errors (the limits'
        included), else the cost limit's refusal; empty when it may run."""
        if document.errors:
            return list(document.errors)
        cost = document.cost(name, variables)
        if cost > self.limits.max_cost:
            return [cost_exceeded(cost, self.limits.max_cost)]
        return []

    def _prepare(self, text: str) -> Document:
        try:
            node = parse_within(text, self.limits.max_tokens)
        except GraphQLSyntaxError:
            return Document(text, None, [], hashlib.sha256(text.encode()).hexdigest())
        except GraphQLError as refusal:  # too many tokens
            return Document(text, None, [refusal], hashlib.sha256(text.encode()).hexdigest())
        hide_suggestions = not self.limits.field_suggestions
        errors = validate(self.schema, node, self.rules, hide_suggestions=hide_suggestions)
        digest = hashlib.sha256(print_ast(node).encode()).hexdigest()
        document = Document(text, node, errors, digest, self.schema)
        operations = [d for d in node.definitions if isinstance(d, OperationDefinitionNode)]
        for operation in operations:
            if operation.name is not None:
                document._operations[operation.name.value] = operation
        if len(operations) == 1:
            document._only = operations[0]
        return document


_PREPARED: ContextVar[Document | None] = ContextVar("gateway_prepared_document", default=None)


@contextlib.contextmanager
def prepared(document: Document | None) -> Iterator[None]:
    """Hand the request's already prepared document to `PreparedDocuments` (no second lookup, and no second
    parse when the cache is off)."""
    token = _PREPARED.set(document)
    try:
        yield
    finally:
        _PREPARED.reset(token)


class PreparedDocuments(SchemaExtension):
    """Give Strawberry the cached parse and validation of the request's document, and refuse what the limits
    refuse before anything executes: a document over the token limit (raised while parsing, so Strawberry
    does not parse it itself), and an operation over the cost limit (a pre-execution error). It also tags
    validation failures (`phase_codes`) and refuses an unnamed choice among several operations
    (`operation_name`): those run here, not as extensions of their own (see `gateway.extensions`)."""

    def __init__(self, documents: Documents) -> None:
        super().__init__()
        self.documents = documents

    def _document(self, query: str) -> Document:
        document = _PREPARED.get()
        return document if document is not None and document.text == query else self.documents.get(query)

    def on_parse(self) -> Iterator[None]:
        context = self.execution_context
        if context.query is not None and context.graphql_document is None:
            document = self._document(context.query)
            if document.node is not None:
                context.graphql_document = document.node
            elif document.errors:  # over the token limit; a fresh error, as raising binds a traceback to it
                refusal = document.errors[0]
                raise GraphQLError(refusal.message, extensions=refusal.extensions)
            # a syntax error is left to Strawberry to raise and report
        yield

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        if context.query is not None:
            document = self._document(context.query)
            if document.node is context.graphql_document:
                refusals = self.documents.refusals(document, context.operation_name, context.variables)
                context.pre_execution_errors = refusals
        yield
        tag_validation_failures(context.pre_execution_errors)

    def on_execute(self) -> Iterator[None]:
        require_operation_name(self.execution_context)
        yield
        result = self.execution_context.result
        if not self.documents.limits.field_suggestions and result is not None and result.errors:
            strip_suggestions(result.errors)  # variable coercion's "Did you mean the enum value …?"
