"""Refuse operations with too many aliases (`MAX_ALIASES_EXCEEDED`), counted through fragment spreads.

Aliases let one request run the same field many times (`a1: orders … a500: orders`). An alias inside a
fragment counts once for each spread of that fragment: `{ a { ...F } b { ...F } }` runs F's aliases twice.
"""

from __future__ import annotations

from collections.abc import Mapping

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    OperationDefinitionNode,
    ValidationRule,
)

from gateway.limits.fragments import Fold, limit_rule

MAX_ALIASES_EXCEEDED = "MAX_ALIASES_EXCEEDED"


class _Aliases(Fold):
    def field(self, node: FieldNode) -> int:
        return int(node.alias is not None) + self.selection_set(node.selection_set)


def operation_aliases(operation: OperationDefinitionNode, fragments: Mapping[str, FragmentDefinitionNode]) -> int:
    return _Aliases(fragments).operation(operation)


def max_aliases_rule(limit: int) -> type[ValidationRule]:
    return limit_rule(_Aliases, limit, MAX_ALIASES_EXCEEDED, lambda aliases: f"The operation uses {aliases} aliases")
