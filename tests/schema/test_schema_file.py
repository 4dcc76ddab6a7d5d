"""schema.graphql is generated, fully described, and checked for drift and breaking changes."""

from __future__ import annotations

from pathlib import Path

from graphql import GraphQLEnumType, GraphQLInputObjectType, GraphQLInterfaceType, GraphQLObjectType

from gateway.schema_file import check, render
from schema import build_schema


def test_committed_schema_file_has_no_drift(project_root: Path) -> None:
    drift = check(build_schema(), project_root / "schema.graphql")
    assert drift.clean, "\n".join(drift.diff) + "\nrun `gateway schema export`"


def test_every_type_and_field_is_described() -> None:
    schema = build_schema()._schema
    missing = []
    for name, graphql_type in schema.type_map.items():
        if name.startswith("__") or name in {"String", "Int", "Boolean", "ID", "Float"}:
            continue
        if not graphql_type.description:
            missing.append(name)
        if isinstance(graphql_type, GraphQLObjectType | GraphQLInterfaceType | GraphQLInputObjectType):
            missing += [f"{name}.{f}" for f, field in graphql_type.fields.items() if not field.description]
        if isinstance(graphql_type, GraphQLEnumType):
            continue
    assert missing == []


def test_check_lists_breaking_changes(tmp_path: Path) -> None:
    current = render(build_schema())
    older = tmp_path / "schema.graphql"
    # a field clients may use that the current schema does not have: removing it would break them
    older.write_text(
        current.replace(
            "type Money @cacheControl(inheritMaxAge: true) {",
            "type Money @cacheControl(inheritMaxAge: true) {\n  legacyAmount: Float\n",
            1,
        ),
        encoding="utf-8",
    )
    drift = check(build_schema(), older)
    assert not drift.clean
    assert any("Money" in change and "legacyAmount" in change for change in drift.breaking), drift.breaking


def test_check_of_identical_file_is_clean(tmp_path: Path) -> None:
    path = tmp_path / "schema.graphql"
    path.write_text(render(build_schema()), encoding="utf-8")
    assert check(build_schema(), path).clean
