"""Look-ahead: whether the running operation selects a field below the one being resolved.

A list resolver that knows its items' relations will be read can load them in one batch per relation and hand the
items over complete; each item's field then resolves without awaiting. graphql-core otherwise gives every awaiting
field of every item its own future, and a list of them a task each: about a third of a 50-order page's execution.

    selects(info, "edges", "node", "customer")   # orders { edges { node { customer { … } } } }

Field names, not aliases, are matched. Fragments (named and inline) are followed whatever their type condition, and
`@skip`/`@include` are honoured, so a prefetch never runs a statement for a field that cannot be resolved.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionNode,
    VariableNode,
)

from schema.context import Info

if TYPE_CHECKING:
    from schema.executor import SharedPlans


def selects(info: Info, *path: str) -> bool:
    """Whether some selection reaches `path` (field names) from the current field."""
    return _reaches(info, info._raw_info.field_nodes, path)


def operation_selects(info: Info, *path: str) -> bool:
    """Whether some selection reaches `path` (field names) from the operation's root: `selects` for every root field
    at once, e.g. `operation_selects(info, "order", "customer")` for all `order` fields and their aliases."""
    return _reaches(info, [info._raw_info.operation], path)


def _reaches(info: Info, start: Sequence[FieldNode | OperationDefinitionNode], path: tuple[str, ...]) -> bool:
    """`_walk`, its answer kept with the operation's plans when they are kept across requests (`SharedPlans`):
    it depends only on the nodes, the path and the variables the operation's directives read."""
    raw = info._raw_info
    # Strawberry hands resolvers the coerced dict; graphql-core's own info holds a container with it
    values: Any = raw.variable_values
    variables: dict[str, Any] = getattr(values, "coerced", values)
    plans: SharedPlans | None = getattr(info.context, "plans", None)  # a test's context may have none
    variables_key = plans.key(variables) if plans is not None else None
    if plans is None or variables_key is None:
        return _walk(raw.fragments, start, path, variables)
    key = (tuple(map(id, start)), path, variables_key)
    known = plans.selections.get(key)
    if known is not None:
        return known[1]
    answer = _walk(raw.fragments, start, path, variables)
    if len(plans.selections) < MAX_KEPT:
        plans.selections[key] = (tuple(start), answer)  # the nodes kept alive with it: their ids stay theirs
    return answer


MAX_KEPT = 1_000
"""Answers kept per operation (a few per resolver that looks ahead)."""


def _walk(
    fragments: dict[str, FragmentDefinitionNode],
    start: Sequence[FieldNode | OperationDefinitionNode],
    path: tuple[str, ...],
    variables: dict[str, Any],
) -> bool:
    nodes: Iterable[FieldNode | OperationDefinitionNode] = start
    for name in path:
        nodes = [
            child
            for node in nodes
            if node.selection_set is not None
            for child in _fields(node.selection_set.selections, fragments, variables)
            if child.name.value == name
        ]
        if not nodes:
            return False
    return True


def _fields(
    selections: Iterable[SelectionNode],
    fragments: dict[str, FragmentDefinitionNode],
    variables: dict[str, Any],
) -> Iterator[FieldNode]:
    for selection in selections:
        if not _included(selection, variables):
            continue
        if isinstance(selection, FieldNode):
            yield selection
        elif isinstance(selection, InlineFragmentNode):
            yield from _fields(selection.selection_set.selections, fragments, variables)
        elif isinstance(selection, FragmentSpreadNode):
            fragment = fragments.get(selection.name.value)
            if fragment is not None:  # validation rejects unknown fragments (and cycles) before execution
                yield from _fields(fragment.selection_set.selections, fragments, variables)


def _included(node: SelectionNode, variables: dict[str, Any]) -> bool:
    """`@skip(if:)` and `@include(if:)` as the executor applies them (validation made `if` a Boolean)."""
    for directive in node.directives or ():
        name = directive.name.value
        if name not in ("skip", "include"):
            continue
        value = next((argument.value for argument in directive.arguments or () if argument.name.value == "if"), None)
        if isinstance(value, VariableNode):
            condition = variables.get(value.name.value)
        else:
            condition = getattr(value, "value", None)
        if condition is (name == "skip"):
            return False
    return True
