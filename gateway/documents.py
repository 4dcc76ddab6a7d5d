"""Parsed and validated documents, cached by their text (bounded LRU) for every way a document arrives.

Plain requests, automatic persisted queries and trusted documents all end up as document text; the first
request for a text parses and validates it, later ones (on any path) reuse the result, its normalised hash
(the response cache's key) and its cache policy per operation. `PreparedDocuments` hands the cached parse and
validation to Strawberry so execution does not repeat them.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections import OrderedDict
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field

from graphql import (
    DocumentNode,
    GraphQLError,
    GraphQLSchema,
    OperationDefinitionNode,
    parse,
    print_ast,
    specified_rules,
)
from strawberry.extensions import SchemaExtension
from strawberry.schema.schema import validate_document

from gateway.cache_policy import NOT_CACHEABLE, CacheHints, CachePolicy


@dataclass
class Document:
    text: str
    node: DocumentNode | None
    """None when the text is not valid GraphQL syntax (Strawberry reports the syntax error)."""
    errors: list[GraphQLError]
    """Validation errors against the schema; empty for a valid document."""
    digest: str
    """SHA-256 of the normalised document (formatting and comments do not matter)."""
    _operations: dict[str, OperationDefinitionNode] = field(default_factory=dict)
    _only: OperationDefinitionNode | None = None
    _policies: dict[str | None, CachePolicy] = field(default_factory=dict)

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
                self._policies[name] = NOT_CACHEABLE
            else:
                self._policies[name] = hints.policy(self.node, operation)
        return self._policies[name]


class Documents:
    def __init__(self, schema: GraphQLSchema, *, max_entries: int = 1_000) -> None:
        self.schema = schema
        self.max_entries = max_entries
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

    def _prepare(self, text: str) -> Document:
        try:
            node = parse(text)
        except GraphQLError:
            return Document(text, None, [], hashlib.sha256(text.encode()).hexdigest())
        errors = validate_document(self.schema, node, tuple(specified_rules))
        digest = hashlib.sha256(print_ast(node).encode()).hexdigest()
        document = Document(text, node, errors, digest)
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
    """Give Strawberry the cached parse and validation of the request's document."""

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
            if document.node is not None:  # a syntax error is left to Strawberry to raise and report
                context.graphql_document = document.node
        yield

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        if context.query is not None:
            document = self._document(context.query)
            if document.node is context.graphql_document:
                context.pre_execution_errors = list(document.errors)
        yield
