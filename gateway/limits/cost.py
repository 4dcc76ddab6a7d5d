"""What an operation may cost to run, so that the expensive ones are refused before they run
(`COST_LIMIT_EXCEEDED`) and rate limits can weigh requests by it.

The cost model, an upper bound:

- a field that returns an object (or interface, or union; a list of them too) costs 1; a scalar or enum
  field costs 0, and so do `__typename` and introspection, which never reach the store;
- a field that returns many items multiplies the cost of everything selected under it by how many:
  connections (fields with `first`/`last`) by `last`, else `first`, else 20 (the default page size), and
  `nodes(ids:)` by the number of ids; at most 100, as the fields accept no more;
- other lists (an order's `lines`, `emails`) count once: they are loaded in one batch per level;
- every fragment counts, whatever its type condition, and so do fields under `@skip`/`@include`.

So `{ orders(first: 50) { edges { node { number customer { name } } } } }` costs 1 + 50 * (1 + 1 + 1) = 151,
and `customers(first: 100) { edges { node { orders(first: 100) { edges { node { number } } } } } }` costs
1 + 100 * (1 + 1 + (1 + 100 * (1 + 1))) = 20,301. Sizes may come from variables (`first: $n`), so the cost is
computed per request; an operation whose sizes are all literal is computed once.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    GraphQLArgument,
    GraphQLError,
    GraphQLField,
    GraphQLInterfaceType,
    GraphQLNamedType,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    Undefined,
    ValueNode,
    VariableNode,
    get_named_type,
    get_operation_ast,
    value_from_ast_untyped,
)

from gateway.limits.fragments import INTROSPECTION_ROOTS, Fold, fragments_of
from resolvers.pagination import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE
from schema.node_query import MAX_NODES

COST_LIMIT_EXCEEDED = "COST_LIMIT_EXCEEDED"
PAGE_ARGUMENTS = ("last", "first")
"""A field with either argument is a connection; `last` wins when both are given (the field refuses that)."""
IDS_ARGUMENT = "ids"


def operation_cost(
    schema: GraphQLSchema,
    document: DocumentNode,
    operation_name: str | None = None,
    variables: Mapping[str, Any] | None = None,
) -> int:
    """The cost of the operation `operation_name` (the only one when None) of a validated `document`, with the
    request's `variables` (raw JSON values; missing ones take the operation's defaults); 0 when there is no
    such operation. `gateway.documents.Document.cost` is the same, cached per document."""
    operation = get_operation_ast(document, operation_name)
    if operation is None:
        return 0
    return OperationCost(schema, document, operation)(variables)


def cost_exceeded(cost: int, max_cost: int) -> GraphQLError:
    message = f"The operation costs {cost}; the limit is {max_cost}"
    return GraphQLError(message, extensions={"code": COST_LIMIT_EXCEEDED, "cost": cost, "maxCost": max_cost})


class OperationCost:
    """The cost of one operation as a function of the request's variables; computed once when it does not
    depend on them."""

    def __init__(self, schema: GraphQLSchema, document: DocumentNode, operation: OperationDefinitionNode) -> None:
        self.schema = schema
        self.operation = operation
        self.fragments = fragments_of(document)
        self.defaults = {
            v.variable.name.value: value_from_ast_untyped(v.default_value)
            for v in operation.variable_definitions or ()
            if v.default_value is not None
        }
        self.static: int | None = None
        walk = self._walk(None)
        cost = walk.root(operation)
        if not walk.uses_variables:
            self.static = cost

    def __call__(self, variables: Mapping[str, Any] | None = None) -> int:
        if self.static is not None:
            return self.static
        return self._walk(variables).root(self.operation)

    def _walk(self, variables: Mapping[str, Any] | None) -> _Cost:
        return _Cost(self.schema, self.fragments, {**self.defaults, **(variables or {})})


class _Cost(Fold):
    def __init__(
        self, schema: GraphQLSchema, fragments: Mapping[str, FragmentDefinitionNode], variables: dict[str, Any]
    ) -> None:
        super().__init__(fragments)
        self.schema = schema
        self.variables = variables
        self.uses_variables = False
        self.parents: list[GraphQLNamedType | None] = []

    def root(self, operation: OperationDefinitionNode) -> int:
        return self._under(self.schema.get_root_type(operation.operation), operation.selection_set)

    def field(self, node: FieldNode) -> int:
        if node.selection_set is None or node.name.value in INTROSPECTION_ROOTS:
            return 0  # a leaf (a composite field always has a selection set)
        parent = self.parents[-1]
        if not isinstance(parent, GraphQLObjectType | GraphQLInterfaceType):
            return 0  # only valid documents are costed
        definition = parent.fields.get(node.name.value)
        if definition is None:
            return 0
        children = self._under(get_named_type(definition.type), node.selection_set)
        return 1 + self._size(node, definition) * children

    def inline(self, node: InlineFragmentNode) -> int:
        if node.type_condition is None:
            return self.selection_set(node.selection_set)
        return self._under(self.schema.get_type(node.type_condition.name.value), node.selection_set)

    def definition(self, node: FragmentDefinitionNode) -> int:
        return self._under(self.schema.get_type(node.type_condition.name.value), node.selection_set)

    def _under(self, parent: GraphQLNamedType | None, selections: SelectionSetNode) -> int:
        self.parents.append(parent)
        try:
            return self.selection_set(selections)
        finally:
            self.parents.pop()

    def _size(self, node: FieldNode, definition: GraphQLField) -> int:
        """How many items the field returns, for the cost of what is selected under it."""
        arguments = {argument.name.value: argument.value for argument in node.arguments or ()}
        if any(name in definition.args for name in PAGE_ARGUMENTS):
            for name in PAGE_ARGUMENTS:
                size = _integer(self._value(arguments.get(name), definition, name))
                if size is not None:
                    return min(max(size, 0), MAX_PAGE_SIZE)
            return DEFAULT_PAGE_SIZE
        if IDS_ARGUMENT in definition.args:
            ids = self._value(arguments.get(IDS_ARGUMENT), definition, IDS_ARGUMENT)
            count = len(ids) if isinstance(ids, list) else int(ids is not None)
            return min(count, MAX_NODES)
        return 1

    def _value(self, node: ValueNode | None, definition: GraphQLField, name: str) -> Any:
        """The argument's value with the request's variables, or the field's default; None when null."""
        if node is None:
            argument = definition.args.get(name)
            return None if argument is None else _default(argument)
        if isinstance(node, VariableNode):
            self.uses_variables = True
        value = value_from_ast_untyped(node, self.variables)
        return None if value is Undefined else value


def _default(argument: GraphQLArgument) -> Any:
    """An argument's default: graphql-core 3.3 keeps it as an external value or a literal (SDL), or as the
    deprecated internal `default_value` (Strawberry)."""
    default = argument.default
    if default is not None:
        return value_from_ast_untyped(default.literal) if default.literal is not None else default.value
    return None if argument.default_value is Undefined else argument.default_value


def _integer(value: object) -> int | None:
    """An Int argument's value; None when absent or not an integer (execution then refuses the variable)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None
