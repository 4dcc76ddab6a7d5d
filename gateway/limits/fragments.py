"""Fold an operation's selections into one number, seeing through fragment spreads.

A fragment is folded once per document however often it is spread: `{ a { ...F } b { ...F } }` costs one
walk of `F`, so fragments spreading each other in a tree (2 spreads a level, 2^n selections) take linear
time. A spread of an unknown fragment, or one closing a cycle, adds nothing: the spec's rules report both.
Recursion is bounded: graphql-core refuses documents nested more than 200 levels (through fragments too)
before any rule runs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from graphql import (
    SKIP,
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    ValidationContext,
    ValidationRule,
    VisitorAction,
)

INTROSPECTION_ROOTS = frozenset({"__schema", "__type"})
"""The introspection entry points (`__typename` is not one: it is an ordinary leaf)."""


def fragments_of(document: DocumentNode) -> dict[str, FragmentDefinitionNode]:
    return {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}


class Fold:
    """Subclasses say what a field, an inline fragment and a spread add (`field`, `inline`, `spread`) and how
    the values of one selection set combine (`combine`: a sum by default)."""

    def __init__(self, fragments: Mapping[str, FragmentDefinitionNode]) -> None:
        self.fragments = fragments
        self._done: dict[str, int] = {}
        self._active: set[str] = set()

    def operation(self, node: OperationDefinitionNode) -> int:
        return self.selection_set(node.selection_set)

    def selection_set(self, node: SelectionSetNode | None) -> int:
        if node is None:
            return 0
        values = []
        for selection in node.selections:
            if isinstance(selection, FieldNode):
                values.append(self.field(selection))
            elif isinstance(selection, InlineFragmentNode):
                values.append(self.inline(selection))
            elif isinstance(selection, FragmentSpreadNode):
                values.append(self.spread(selection))
        return self.combine(values)

    def combine(self, values: list[int]) -> int:
        return sum(values)

    def field(self, node: FieldNode) -> int:
        return self.selection_set(node.selection_set)

    def inline(self, node: InlineFragmentNode) -> int:
        return self.selection_set(node.selection_set)

    def spread(self, node: FragmentSpreadNode) -> int:
        return self.fragment(node.name.value)

    def fragment(self, name: str) -> int:
        """The fold of the fragment named `name` (computed once)."""
        if name in self._done:
            return self._done[name]
        definition = self.fragments.get(name)
        if definition is None or name in self._active:
            return 0
        self._active.add(name)
        try:
            value = self.definition(definition)
        finally:
            self._active.discard(name)
        self._done[name] = value
        return value

    def definition(self, node: FragmentDefinitionNode) -> int:
        return self.selection_set(node.selection_set)


def limit_rule(
    fold: Callable[[Mapping[str, FragmentDefinitionNode]], Fold],
    limit: int,
    code: str,
    describe: Callable[[int], str],
) -> type[ValidationRule]:
    """A validation rule refusing each operation whose `fold` exceeds `limit`, with `describe(value)` and `code`."""

    class LimitRule(ValidationRule):
        def __init__(self, context: ValidationContext) -> None:
            super().__init__(context)
            self.fold = fold(fragments_of(context.document))

        def enter_operation_definition(self, node: OperationDefinitionNode, *_args: Any) -> VisitorAction:
            value = self.fold.operation(node)
            if value > limit:
                message = f"{describe(value)}; the limit is {limit}"
                self.report_error(GraphQLError(message, node, extensions={"code": code}))
            return SKIP

    return LimitRule
