"""Refuse operations nested too deeply (`MAX_DEPTH_EXCEEDED`), fragments included.

Depth counts field levels: `{ orders { edges { node { number } } } }` is 4 levels deep; fragments add no level
of their own. Introspection (`__schema`, `__type`) does not count: it is refused when introspection is off,
and graphql-core's `MaxIntrospectionDepthRule` bounds it when it is on (GraphiQL's introspection query is 15
levels deep).
"""

from __future__ import annotations

from collections.abc import Mapping

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    OperationDefinitionNode,
    ValidationRule,
)

from gateway.limits.fragments import INTROSPECTION_ROOTS, Fold, limit_rule

MAX_DEPTH_EXCEEDED = "MAX_DEPTH_EXCEEDED"


class _Depth(Fold):
    def combine(self, values: list[int]) -> int:
        return max(values, default=0)

    def field(self, node: FieldNode) -> int:
        if node.name.value in INTROSPECTION_ROOTS:
            return 0
        return 1 + self.selection_set(node.selection_set)


def operation_depth(operation: OperationDefinitionNode, fragments: Mapping[str, FragmentDefinitionNode]) -> int:
    return _Depth(fragments).operation(operation)


def max_depth_rule(limit: int) -> type[ValidationRule]:
    return limit_rule(_Depth, limit, MAX_DEPTH_EXCEEDED, lambda depth: f"The operation is {depth} levels deep")
