"""Manifests (Apollo's and Relay's formats) and the validation of trusted documents against the schema."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from gateway.trusted_documents import (
    APOLLO_FORMAT,
    InvalidDocument,
    ManifestError,
    check_stored,
    current_schema,
    load_manifest,
    parse_manifest,
    validate_documents,
)
from resolvers.trusted_documents import StoredDocument, TrustedDocumentInput

CUSTOMERS = "query Customers { customers(first: 1) { totalCount } }"
PRODUCTS = "query Products { products { totalCount } }"


def apollo(*operations: Any) -> dict[str, Any]:
    return {"format": APOLLO_FORMAT, "version": 1, "operations": list(operations)}


def test_apollo_manifest() -> None:
    digest = hashlib.sha256(CUSTOMERS.encode()).hexdigest()
    manifest = apollo(
        {"id": digest, "name": "Customers", "type": "query", "body": CUSTOMERS},
        {"id": "p", "body": PRODUCTS},  # no name: taken from the document
    )
    assert parse_manifest(manifest) == [
        TrustedDocumentInput(digest, CUSTOMERS, "Customers"),
        TrustedDocumentInput("p", PRODUCTS, "Products"),
    ]


def test_relay_map_with_md5_ids() -> None:
    md5 = hashlib.md5(CUSTOMERS.encode()).hexdigest()
    anonymous = "{ products { totalCount } }"
    assert parse_manifest({md5: CUSTOMERS, "anon": anonymous}) == [
        TrustedDocumentInput(md5, CUSTOMERS, "Customers"),
        TrustedDocumentInput("anon", anonymous, None),
    ]


@pytest.mark.parametrize(
    ("manifest", "message"),
    [
        ([CUSTOMERS], "a manifest is a JSON object"),
        ("query", "a manifest is a JSON object"),
        ({}, "no documents"),
        (apollo(), "no documents"),
        ({"format": "graphql-persisted-documents", "documents": {}}, "unknown manifest format"),
        ({**apollo(), "version": 2}, "version 2; expected 1"),
        ({"format": APOLLO_FORMAT, "version": 1, "operations": {"a": CUSTOMERS}}, "'operations' must be a list"),
        (apollo(CUSTOMERS), r"operations\[0\] must be an object"),
        (apollo({"name": "Customers", "body": CUSTOMERS}), r"operations\[0\]: 'id' must be a non-empty string"),
        (apollo({"id": "", "body": CUSTOMERS}), "'id' must be a non-empty string"),
        (apollo({"id": "a", "body": CUSTOMERS}, {"id": "b"}), r"operations\[1\] \(b\): 'body' must be a string"),
        (apollo({"id": "a", "name": 3, "body": CUSTOMERS}), "'name' must be a string"),
        ({"a": CUSTOMERS, "b": {"body": PRODUCTS}}, "not a known manifest format .* 'b'"),
        ({"operations": []}, "not a known manifest format"),
    ],
)
def test_manifests_of_other_shapes_are_refused_with_the_reason(manifest: Any, message: str) -> None:
    with pytest.raises(ManifestError, match=message):
        parse_manifest(manifest)


def test_load_manifest(tmp_path: Path) -> None:
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps({"a": CUSTOMERS}), encoding="utf-8")
    assert load_manifest(path) == [TrustedDocumentInput("a", CUSTOMERS, "Customers")]
    path.write_text("{'a': 1}", encoding="utf-8")
    with pytest.raises(ManifestError, match=r"is not JSON: .*line 1, column 2"):
        load_manifest(path)
    with pytest.raises(OSError, match="No such file"):
        load_manifest(tmp_path / "missing.json")


def test_every_invalid_document_is_reported_with_its_first_error() -> None:
    documents = [
        TrustedDocumentInput("ok", CUSTOMERS, "Customers"),
        TrustedDocumentInput("field", "query Gone { customers { gone } }", "Gone"),
        TrustedDocumentInput("syntax", "query Broken { customers {", None),
        TrustedDocumentInput("args", "query Args { customers(first: 1, bogus: 2) { nope } }", "Args"),
        TrustedDocumentInput("name", CUSTOMERS, "Other"),
        TrustedDocumentInput("x" * 201, PRODUCTS, "Products"),
        TrustedDocumentInput("ok", PRODUCTS, "Products"),
        TrustedDocumentInput("sdl", "type Query { a: Int }", None),
    ]
    invalid = validate_documents(documents)
    assert [(i.document_id, i.name) for i in invalid] == [
        ("field", "Gone"),
        ("syntax", None),
        ("args", "Args"),
        ("name", "Other"),
        ("x" * 201, "Products"),
        ("ok", "Products"),
        ("sdl", None),
    ]
    messages = [i.message for i in invalid]
    assert messages[0] == "Cannot query field 'gone' on type 'CustomerConnection'. (line 1, column 26)"
    assert messages[1].startswith("Syntax Error: Expected Name, found <EOF>.")
    assert messages[2].startswith("Unknown argument 'bogus' on field 'Query.customers'.")  # the first error only
    assert messages[3] == "the document has no operation named 'Other'"
    assert messages[4] == "the id must have 1 to 200 characters"
    assert messages[5] == "the id is given twice, with different texts"
    assert "not executable" in messages[6]
    assert str(invalid[0]) == f"field (Gone): {messages[0]}"
    assert str(invalid[1]).startswith("syntax (anonymous): Syntax Error")
    assert validate_documents(documents[:1]) == []


def test_stored_documents_are_checked_against_the_current_schema() -> None:
    now = datetime.now(UTC)
    stored = [
        StoredDocument("acme", "c1", "0" * 64, CUSTOMERS, "Customers", now),
        StoredDocument("acme", "old", "0" * 64, "query Old { customers { gone } }", "Old", now),
    ]
    assert check_stored(stored, current_schema()) == [
        InvalidDocument(
            "old", "Old", "Cannot query field 'gone' on type 'CustomerConnection'. (line 1, column 25)", "acme"
        )
    ]
    assert str(check_stored(stored)[0]).startswith("acme/old (Old): Cannot query field 'gone'")
