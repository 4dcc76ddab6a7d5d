"""Refuse operations nested too deeply (`MAX_DEPTH_EXCEEDED`), fragments included.

Depth counts field levels: `{ orders { edges { node { number } } } }` is 4 levels deep; fragments add no level
of their own. Introspection (`__schema`, `__type`) does not count: it is refused when introspection is off,
and graphql-core's `MaxIntrospectionDepthRule` bounds it when it is on (GraphiQL's introspection query is 15
levels deep).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from graphql import (
    SKIP,
    FieldNode,
    FragmentDefinitionNode,
    GraphQLError,
    OperationDefinitionNode,
    ValidationContext,
    ValidationRule,
    VisitorAction,
)

from gateway.limits.fragments import INTROSPECTION_ROOTS, Fold, fragments_of

MAX_DEPTH_EXCEEDED = "MAX_DEPTH_EXCEEDED"


class _Depth(Fold):
    def combine(self, values: list[int]) -> int:
        return max(values, default=0)

    def field(self, node: FieldNode) -> int:
        if node.name.value in INTROSPECTION_ROOTS:
            return 0
        return 1 + self.selection_set(node.selection_set)


def operation_depth(operation: OperationDefinitionNode, fragments: Mapping[str, FragmentDefinitionNode]) -> int:
    return _Depth(fragments).selection_set(operation.selection_set)


def max_depth_rule(limit: int) -> type[ValidationRule]:
    class MaxDepthRule(ValidationRule):
        def __init__(self, context: ValidationContext) -> None:
            super().__init__(context)
            self.depth = _Depth(fragments_of(context.document))

        def enter_operation_definition(self, node: OperationDefinitionNode, *_args: Any) -> VisitorAction:
            depth = self.depth.selection_set(node.selection_set)
            if depth > limit:
                message = f"The operation is {depth} levels deep; the limit is {limit}"
                self.report_error(GraphQLError(message, node, extensions={"code": MAX_DEPTH_EXCEEDED}))
            return SKIP

    return MaxDepthRule
