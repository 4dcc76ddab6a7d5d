"""`schema.graphql`: export the SDL, and check the committed file for drift and breaking changes."""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from pathlib import Path

from graphql import build_schema as build_sdl_schema
from graphql import find_breaking_changes, find_dangerous_changes
from strawberry import Schema
from strawberry.printer import print_schema


def render(schema: Schema) -> str:
    return print_schema(schema).rstrip("\n") + "\n"


@dataclass
class Drift:
    diff: list[str] = field(default_factory=list)
    breaking: list[str] = field(default_factory=list)
    dangerous: list[str] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not self.diff


def check(schema: Schema, path: Path) -> Drift:
    """Compare `schema` with the SDL in `path`; breaking changes are those that would fail existing clients."""
    current = render(schema)
    committed = path.read_text(encoding="utf-8") if path.exists() else ""
    if committed == current:
        return Drift()
    diff = list(difflib.unified_diff(committed.splitlines(), current.splitlines(), str(path), "schema", lineterm=""))
    if not committed:
        return Drift(diff=diff)
    old, new = build_sdl_schema(committed), build_sdl_schema(current)
    return Drift(
        diff=diff,
        breaking=[f"{c.type.name}: {c.description}" for c in find_breaking_changes(old, new)],
        dangerous=[f"{c.type.name}: {c.description}" for c in find_dangerous_changes(old, new)],
    )
