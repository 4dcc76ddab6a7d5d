"""Refuse operations with too many aliases (`MAX_ALIASES_EXCEEDED`), counted through fragment spreads.

Aliases let one request run the same field many times (`a1: orders … a500: orders`). An alias inside a
fragment counts once for each spread of that fragment: `{ a { ...F } b { ...F } }` runs F's aliases twice.
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

from gateway.limits.fragments import Fold, fragments_of

MAX_ALIASES_EXCEEDED = "MAX_ALIASES_EXCEEDED"


class _Aliases(Fold):
    def field(self, node: FieldNode) -> int:
        return int(node.alias is not None) + self.selection_set(node.selection_set)


def operation_aliases(operation: OperationDefinitionNode, fragments: Mapping[str, FragmentDefinitionNode]) -> int:
    return _Aliases(fragments).selection_set(operation.selection_set)


def max_aliases_rule(limit: int) -> type[ValidationRule]:
    class MaxAliasesRule(ValidationRule):
        def __init__(self, context: ValidationContext) -> None:
            super().__init__(context)
            self.aliases = _Aliases(fragments_of(context.document))

        def enter_operation_definition(self, node: OperationDefinitionNode, *_args: Any) -> VisitorAction:
            aliases = self.aliases.selection_set(node.selection_set)
            if aliases > limit:
                message = f"The operation uses {aliases} aliases; the limit is {limit}"
                self.report_error(GraphQLError(message, node, extensions={"code": MAX_ALIASES_EXCEEDED}))
            return SKIP

    return MaxAliasesRule
