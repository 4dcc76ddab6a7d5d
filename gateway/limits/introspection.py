"""Refuse `__schema` and `__type` when introspection is off (`INTROSPECTION_DISABLED`); `__typename` stays.

Without introspection a client learns the schema only from what it is given (`schema.graphql`), not by
asking a production gateway. graphql-core's own `NoSchemaIntrospectionCustomRule` reports every field under
`__schema`; this reports each entry point once, with a code.
"""

from __future__ import annotations

from typing import Any

from graphql import SKIP, FieldNode, GraphQLError, ValidationRule, VisitorAction

from gateway.limits.fragments import INTROSPECTION_ROOTS

INTROSPECTION_DISABLED = "INTROSPECTION_DISABLED"


class NoIntrospectionRule(ValidationRule):
    def enter_field(self, node: FieldNode, *_args: Any) -> VisitorAction:
        name = node.name.value
        if name not in INTROSPECTION_ROOTS:
            return None
        message = f"Introspection is disabled: `{name}` cannot be queried"
        self.report_error(GraphQLError(message, node, extensions={"code": INTROSPECTION_DISABLED}))
        return SKIP
