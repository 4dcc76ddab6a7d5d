"""Persisted-operation manifests: read Apollo's and Relay's formats, and validate documents against the schema.

Two manifest formats are read::

    {"format": "apollo-persisted-query-manifest", "version": 1,
     "operations": [{"id": "<sha256>", "name": "GetOrder", "type": "query", "body": "query GetOrder { ... }"}]}

    {"<id>": "<query text>", ...}        (Relay's persisted-query map, or any plain id-to-document map)

Ids are the client's own (Relay's are often md5 hashes), so an id is never required to be the body's sha256; the
store computes that separately. A document is trusted only if it parses and validates against the gateway's
current schema, and a schema change that would break a stored document is caught by `gateway schema check`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from graphql import GraphQLError, GraphQLSchema, OperationDefinitionNode, parse, validate

from integrations.store.models import DOCUMENT_ID_MAX, NAME_MAX
from resolvers.trusted_documents import StoredDocument, TrustedDocumentInput

APOLLO_FORMAT = "apollo-persisted-query-manifest"
_KNOWN = f'Apollo\'s {{"format": "{APOLLO_FORMAT}", "version": 1, "operations": [...]}} or a map of id to query text'


class ManifestError(Exception):
    """The manifest is not JSON, or not one of the formats above."""


@dataclass(frozen=True)
class InvalidDocument:
    document_id: str
    name: str | None
    message: str
    """The first error found."""
    client: str | None = None

    def __str__(self) -> str:
        where = f"{self.client}/{self.document_id}" if self.client is not None else self.document_id
        return f"{where} ({self.name or 'anonymous'}): {self.message}"


def load_manifest(path: Path) -> list[TrustedDocumentInput]:
    """The documents of the manifest file at `path` (OSError when it cannot be read; ManifestError when bad)."""
    text = path.read_text(encoding="utf-8")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ManifestError(f"{path} is not JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})") from exc
    return parse_manifest(data)


def parse_manifest(data: Any) -> list[TrustedDocumentInput]:
    """The documents of a decoded manifest, in manifest order; ManifestError names what is wrong with its shape."""
    if not isinstance(data, dict):
        raise ManifestError(f"a manifest is a JSON object: {_KNOWN}")
    documents = _apollo(data) if "format" in data else _relay(data)
    if not documents:
        raise ManifestError("the manifest has no documents")
    return documents


def validate_documents(
    documents: Sequence[TrustedDocumentInput], schema: GraphQLSchema | None = None
) -> list[InvalidDocument]:
    """Every document that cannot be trusted, with its first error: it does not parse or validate against
    `schema` (default: the gateway's), its id is empty or too long, or its id is given two different texts."""
    schema = schema if schema is not None else current_schema()
    texts: dict[str, str] = {}
    invalid = []
    for document in documents:
        message = _id_problem(document, texts) or first_error(document.document, schema, document.operation_name)
        texts.setdefault(document.document_id, document.document)
        if message:
            invalid.append(InvalidDocument(document.document_id, document.operation_name, message))
    return invalid


def check_stored(documents: Iterable[StoredDocument], schema: GraphQLSchema | None = None) -> list[InvalidDocument]:
    """The stored documents that `schema` (default: the gateway's) no longer accepts."""
    schema = schema if schema is not None else current_schema()
    return [
        InvalidDocument(document.document_id, document.operation_name, message, client=document.client)
        for document in documents
        if (message := first_error(document.document, schema, document.operation_name))
    ]


def first_error(document: str, schema: GraphQLSchema, operation_name: str | None = None) -> str | None:
    """Why `document` cannot run against `schema` (its first syntax or validation error), or None."""
    try:
        tree = parse(document)
    except GraphQLError as error:
        return _describe(error)
    if errors := validate(schema, tree):
        return _describe(errors[0])
    names = {d.name.value for d in tree.definitions if isinstance(d, OperationDefinitionNode) and d.name}
    if operation_name is not None and operation_name not in names:
        return f"the document has no operation named {operation_name!r}"
    return None


def current_schema() -> GraphQLSchema:
    from schema import build_schema

    return build_schema()._schema


def _apollo(data: dict[str, Any]) -> list[TrustedDocumentInput]:
    if data["format"] != APOLLO_FORMAT:
        raise ManifestError(f"unknown manifest format {data['format']!r}; expected {_KNOWN}")
    if data.get("version") != 1:
        raise ManifestError(f"unsupported {APOLLO_FORMAT} version {data.get('version')!r}; expected 1")
    operations = data.get("operations")
    if not isinstance(operations, list):
        raise ManifestError(f"{APOLLO_FORMAT}: 'operations' must be a list")
    documents = []
    for index, operation in enumerate(operations):
        where = f"{APOLLO_FORMAT}: operations[{index}]"
        if not isinstance(operation, dict):
            raise ManifestError(f"{where} must be an object with id, name, type and body")
        document_id, name, body = operation.get("id"), operation.get("name"), operation.get("body")
        if not isinstance(document_id, str) or not document_id:
            raise ManifestError(f"{where}: 'id' must be a non-empty string")
        if not isinstance(body, str):
            raise ManifestError(f"{where} ({document_id}): 'body' must be a string")
        if name is not None and not isinstance(name, str):
            raise ManifestError(f"{where} ({document_id}): 'name' must be a string")
        documents.append(TrustedDocumentInput(document_id, body, name or _operation_name(body)))
    return documents


def _relay(data: dict[str, Any]) -> list[TrustedDocumentInput]:
    wrong = [key for key, value in data.items() if not isinstance(value, str)]
    if wrong:
        shown = ", ".join(repr(key) for key in wrong[:3]) + (", ..." if len(wrong) > 3 else "")
        raise ManifestError(f"not a known manifest format (the value of {shown} is not query text); expected {_KNOWN}")
    return [TrustedDocumentInput(key, value, _operation_name(value)) for key, value in data.items()]


def _operation_name(body: str) -> str | None:
    """The name of the document's only operation, if it has exactly one and it is named."""
    try:
        tree = parse(body)
    except GraphQLError:
        return None  # reported by validation
    operations = [d for d in tree.definitions if isinstance(d, OperationDefinitionNode)]
    if len(operations) == 1 and operations[0].name:
        return operations[0].name.value
    return None


def _id_problem(document: TrustedDocumentInput, texts: dict[str, str]) -> str | None:
    if not 0 < len(document.document_id) <= DOCUMENT_ID_MAX:
        return f"the id must have 1 to {DOCUMENT_ID_MAX} characters"
    if document.operation_name is not None and len(document.operation_name) > NAME_MAX:
        return f"the operation name must have at most {NAME_MAX} characters"
    if texts.get(document.document_id, document.document) != document.document:
        return "the id is given twice, with different texts"
    return None


def _describe(error: GraphQLError) -> str:
    if error.locations:
        location = error.locations[0]
        return f"{error.message} (line {location.line}, column {location.column})"
    return error.message
