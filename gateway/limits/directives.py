"""Refuse operations with too many directives (`MAX_DIRECTIVES_EXCEEDED`), counted through fragment spreads.

Every directive use counts: on the operation, its variables, fields, inline fragments, spreads and fragment
definitions; a fragment's directives count once for each spread of it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from graphql import (
    SKIP,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    OperationDefinitionNode,
    ValidationContext,
    ValidationRule,
    VisitorAction,
)

from gateway.limits.fragments import Fold, fragments_of

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
    class MaxDirectivesRule(ValidationRule):
        def __init__(self, context: ValidationContext) -> None:
            super().__init__(context)
            self.directives = _Directives(fragments_of(context.document))

        def enter_operation_definition(self, node: OperationDefinitionNode, *_args: Any) -> VisitorAction:
            directives = self.directives.operation(node)
            if directives > limit:
                message = f"The operation uses {directives} directives; the limit is {limit}"
                self.report_error(GraphQLError(message, node, extensions={"code": MAX_DIRECTIVES_EXCEEDED}))
            return SKIP

    return MaxDirectivesRule
