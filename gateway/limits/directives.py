"""Refuse operations with too many directives (`MAX_DIRECTIVES_EXCEEDED`), counted through fragment spreads.

Every directive use counts: on the operation, its variables, fields, inline fragments, spreads and fragment
definitions; a fragment's directives count once for each spread of it.
"""

from __future__ import annotations

from collections.abc import Mapping

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    InlineFragmentNode,
    OperationDefinitionNode,
    ValidationRule,
)

from gateway.limits.fragments import Fold, limit_rule

MAX_DIRECTIVES_EXCEEDED = "MAX_DIRECTIVES_EXCEEDED"


class _Directives(Fold):
    def field(self, node: FieldNode) -> int:
        return len(node.directives or ()) + self.selection_set(node.selection_set)

    def inline(self, node: InlineFragmentNode) -> int:
        return len(node.directives or ()) + self.selection_set(node.selection_set)

    def spread(self, node: FragmentSpreadNode) -> int:
        return len(node.directives or ()) + self.fragment(node.name.value)

    def definition(self, node: FragmentDefinitionNode) -> int:
        return len(node.directives or ()) + self.selection_set(node.selection_set)

    def operation(self, node: OperationDefinitionNode) -> int:
        variables = sum(len(v.directives or ()) for v in node.variable_definitions or ())
        return len(node.directives or ()) + variables + self.selection_set(node.selection_set)


def operation_directives(operation: OperationDefinitionNode, fragments: Mapping[str, FragmentDefinitionNode]) -> int:
    return _Directives(fragments).operation(operation)


def max_directives_rule(limit: int) -> type[ValidationRule]:
    return limit_rule(
        _Directives, limit, MAX_DIRECTIVES_EXCEEDED, lambda directives: f"The operation uses {directives} directives"
    )
