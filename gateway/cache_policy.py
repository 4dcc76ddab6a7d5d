"""How long the response to an operation may be cached, and by whom, from the schema's `@cacheControl` hints.

Computed statically from the document (once per document and operation; the documents cache keeps it), over
every field the operation *may* touch: fragments on every possible type and fields under `@skip`/`@include`
count too. That over-approximates what one execution touches, so the answer errs towards shorter and more
private, never longer or more shared.

Rules (Apollo Server's, see `schema/cache_control.py`): a field's own hint wins, then its return type's; leaf
fields and `inheritMaxAge` take their parent's maxAge; root and object fields without a hint get
`default_max_age`. An interface or union without a hint of its own takes the most restrictive of its possible
types. The response's maxAge is the minimum over all fields; it is PRIVATE if any field or type is.
Introspection is never cached.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLField,
    GraphQLInterfaceType,
    GraphQLNamedType,
    GraphQLObjectType,
    GraphQLSchema,
    GraphQLUnionType,
    InlineFragmentNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    get_named_type,
    is_abstract_type,
    is_leaf_type,
)
from strawberry.types.unset import UNSET

from schema.cache_control import CacheControl, CacheControlScope

DEFINITION = "strawberry-definition"


class Scope(Enum):
    PUBLIC = "public"
    PRIVATE = "private"


@dataclass(frozen=True)
class CachePolicy:
    max_age: int
    scope: Scope = Scope.PUBLIC

    @property
    def cacheable(self) -> bool:
        return self.max_age > 0


NOT_CACHEABLE = CachePolicy(0)


@dataclass(frozen=True)
class _Hint:
    max_age: int | None = None
    private: bool = False
    inherit: bool = False


_NO_HINT = _Hint()


class CacheHints:
    """The `@cacheControl` hints of one schema, read once from Strawberry's definitions."""

    def __init__(self, schema: GraphQLSchema, *, default_max_age: int = 0) -> None:
        self.schema = schema
        self.default_max_age = default_max_age
        self._types: dict[str, _Hint] = {}
        self._fields: dict[tuple[str, str], _Hint] = {}
        for named in schema.type_map.values():
            definition = (getattr(named, "extensions", None) or {}).get(DEFINITION)
            hint = _hint_of(getattr(definition, "directives", ()))
            if hint is not None:
                self._types[named.name] = hint
            if isinstance(named, GraphQLObjectType | GraphQLInterfaceType):
                for name, field in named.fields.items():
                    field_hint = _hint_of(getattr((field.extensions or {}).get(DEFINITION), "directives", ()))
                    if field_hint is not None:
                        self._fields[(named.name, name)] = field_hint
        for named in schema.type_map.values():  # abstract types without a hint: their strictest possible type
            if is_abstract_type(named) and named.name not in self._types:
                self._types[named.name] = self._strictest(named)

    def _strictest(self, abstract: GraphQLNamedType) -> _Hint:
        assert isinstance(abstract, GraphQLInterfaceType | GraphQLUnionType)
        hints = [self._types.get(t.name, _NO_HINT) for t in self.schema.get_possible_types(abstract)]
        if not hints or any(h.max_age is None and not h.inherit for h in hints):
            return _Hint(private=any(h.private for h in hints))
        ages = [h.max_age for h in hints if h.max_age is not None]
        return _Hint(
            max_age=min(ages) if ages else None,
            private=any(h.private for h in hints),
            inherit=not ages,
        )

    def policy(self, document: DocumentNode, operation: OperationDefinitionNode) -> CachePolicy:
        if operation.operation is not OperationType.QUERY:
            return NOT_CACHEABLE
        root = self.schema.query_type
        assert root is not None
        fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}
        walk = _Walk(self, fragments)
        if not walk.selection_set(operation.selection_set, root, None, set()):
            return NOT_CACHEABLE
        max_age = self.default_max_age if walk.max_age is None else walk.max_age
        return CachePolicy(max_age, Scope.PRIVATE if walk.private else Scope.PUBLIC) if max_age > 0 else NOT_CACHEABLE

    def field_age(self, parent: GraphQLNamedType, name: str, field: GraphQLField, parent_age: int | None) -> _Hint:
        """The hint that applies to the field `parent.name`; `max_age` None means no constraint (a leaf under the
        root)."""
        field_hint = self._fields.get((parent.name, name), _NO_HINT)
        named = get_named_type(field.type)
        type_hint = self._types.get(named.name, _NO_HINT)
        private = field_hint.private or type_hint.private
        if field_hint.max_age is not None:
            age: int | None = field_hint.max_age
        elif field_hint.inherit:
            age = parent_age
        elif type_hint.max_age is not None:
            age = type_hint.max_age
        elif type_hint.inherit or is_leaf_type(named):
            age = parent_age
        else:
            age = self.default_max_age
        if age is None and parent_age is None and not is_leaf_type(named):
            age = self.default_max_age  # a root field that would inherit from nothing
        return _Hint(max_age=age, private=private)


class _Walk:
    def __init__(self, hints: CacheHints, fragments: dict[str, FragmentDefinitionNode]) -> None:
        self.hints = hints
        self.fragments = fragments
        self.max_age: int | None = None
        self.private = False

    def selection_set(
        self, selections: SelectionSetNode, parent: GraphQLNamedType, parent_age: int | None, seen: set[str]
    ) -> bool:
        """Visit every selection; False as soon as the operation turns out not to be cacheable."""
        schema = self.hints.schema
        for selection in selections.selections:
            if isinstance(selection, FieldNode):
                name = selection.name.value
                if name == "__typename":
                    continue
                if name.startswith("__"):
                    return False  # introspection
                assert isinstance(parent, GraphQLObjectType | GraphQLInterfaceType)
                field = parent.fields.get(name)
                if field is None:  # only validated documents get here
                    return False
                hint = self.hints.field_age(parent, name, field, parent_age)
                self.private = self.private or hint.private
                if hint.max_age is not None:
                    self.max_age = hint.max_age if self.max_age is None else min(self.max_age, hint.max_age)
                    if self.max_age <= 0:
                        return False
                if selection.selection_set is not None:
                    named = get_named_type(field.type)
                    if not self.selection_set(selection.selection_set, named, hint.max_age, seen):
                        return False
            elif isinstance(selection, InlineFragmentNode):
                condition = selection.type_condition
                target = schema.get_type(condition.name.value) if condition is not None else parent
                if target is None or not self.selection_set(selection.selection_set, target, parent_age, seen):
                    return False
            elif isinstance(selection, FragmentSpreadNode):
                name = selection.name.value
                fragment = self.fragments.get(name)
                if fragment is None or name in seen:
                    continue  # a cycle is a validation error; an unknown fragment too
                target = schema.get_type(fragment.type_condition.name.value)
                if target is None or not self.selection_set(fragment.selection_set, target, parent_age, seen | {name}):
                    return False
        return True


def _hint_of(directives: object) -> _Hint | None:
    for directive in directives or ():  # type: ignore[attr-defined]
        if isinstance(directive, CacheControl):
            return _Hint(
                max_age=None if directive.max_age in (None, UNSET) else directive.max_age,
                private=directive.scope is CacheControlScope.PRIVATE,
                inherit=directive.inherit_max_age is True,
            )
    return None
