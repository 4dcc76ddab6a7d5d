"""graphql-core's executor with a short path for fields read straight off an object.

Most fields of a typical answer are read straight off an object: `Order.number`, `Order.total`, `Money.amount`,
an order's prefetched `customer` and `lines`. For each, graphql-core builds a resolve info, calls Strawberry's
resolver through its wrappers and completes the value in several nested calls: a few µs a field, most of a
50-order page's execution. Here such a field is read and completed directly.

A field takes the short path when no resolve middleware is installed and it is `__typename`, or a Strawberry field
without field extension that is either plain (Strawberry's default resolver) or declared `prefetched` (its resolver
returns an attribute when set: `schema/prefetched.py`), behind at most the gateway's permission guard, whose check
is made here; and when its type is a (non-null) scalar, enum, object or list of objects:
- Scalars and enums: an object's are read and coerced first. They run no code of ours, so reading them early
  changes nothing. When one would be an error (null for a non-null field, a value the scalar refuses, a guard that
  refuses), the whole object is executed by graphql-core instead, which raises exactly the error it always did.
- Objects and lists of objects: the value's selection is executed at once, errors located and propagated as
  graphql-core does (at the item, then at the list). Anything unusual (a null for a non-null field or item, a value
  of another class, an awaitable, an unset prefetched attribute, a refusing guard, a deferred fragment, a
  directive on the field) goes to `execute_field`, which reads the field again.
Every other field (other resolvers, interfaces and unions, lists of leaves) is executed by graphql-core, in order.
`tests/schema/test_executor.py` compares both executors on broken values of every kind.
"""

from __future__ import annotations

import builtins
from collections.abc import Awaitable, Callable
from functools import partial
from operator import attrgetter
from typing import Any, NamedTuple

from graphql import (
    GRAPHQL_MAX_INT,
    GRAPHQL_MIN_INT,
    DirectiveNode,
    DocumentNode,
    GraphQLBoolean,
    GraphQLField,
    GraphQLID,
    GraphQLInt,
    GraphQLLeafType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLResolveInfoHelpers,
    GraphQLString,
    ListValueNode,
    ObjectValueNode,
    Undefined,
    ValueNode,
    VariableNode,
    Visitor,
    is_leaf_type,
    visit,
)
from graphql.execution.collect_fields import FieldDetailsList, GroupedFieldSet
from graphql.pyutils import AwaitableOrValue, Path, gather_with_cancel
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext
from strawberry.types.base import StrawberryObjectDefinition
from strawberry.types.field import StrawberryField

from schema.permissions import DEFINITION, guard_of, permits
from schema.prefetched import prefetched_attribute

TYPENAME = "__typename"
PLAIN: dict[GraphQLLeafType, type] = {GraphQLString: str, GraphQLID: str, GraphQLBoolean: bool, GraphQLInt: int}
STRAWBERRY_IS_TYPE_OF = "GraphQLCoreConverter.from_object.<locals>._get_is_type_of.<locals>.is_type_of"


_SLOW = object()
"""A read's answer when graphql-core must execute the field after all: its guard refuses the principal (the
resolver raises the error), or nothing was prefetched (the resolver loads)."""


class _Leaf(NamedTuple):
    read: Callable[[Any], Any]
    grants: tuple[str, ...] | None
    """The field's guard (`schema.permissions`), asked with the request's principal before reading; None: no guard."""
    type: GraphQLLeafType
    non_null: bool
    plain: builtins.type | None
    """The Python type a built-in scalar serializes as itself (`str` for String and ID, ...)."""


class _Object(NamedTuple):
    read: Callable[[Any], Any]
    grants: tuple[str, ...] | None
    type: GraphQLObjectType
    field: GraphQLField
    accepts: Callable[[Any], bool]
    """True for a value graphql-core would complete as `type` without a word (no error, nothing to await)."""
    selection: list[_Selection]
    """Memo: the value's selection and its plan, once worked out (for as long as the plan is kept: one request, or
    the operation's `SharedPlans`)."""


class _List(NamedTuple):
    """A list of objects: `[T]`, `[T!]`, `[T]!` or `[T!]!`."""

    read: Callable[[Any], Any]
    grants: tuple[str, ...] | None
    type: GraphQLObjectType
    field: GraphQLField
    item_type: GraphQLOutputType
    accepts: Callable[[Any], bool]
    selection: list[_Selection]


class _Plan(NamedTuple):
    fields: list[tuple[str, FieldDetailsList, _Leaf | _Object | _List | None]]
    """Per response key: its fields and, for a short-path field, how to read it (None: graphql-core executes it)."""
    leaves: list[tuple[str, _Leaf]]
    rest: list[tuple[str, FieldDetailsList, _Object | _List | None]] | None
    """The other fields; None when they are not all after the leaves (the answer is then rebuilt in order)."""


class _Selection(NamedTuple):
    fields: GroupedFieldSet | None
    """None when the selection defers a fragment: graphql-core executes it."""
    plan: _Plan | None


class _Variant(NamedTuple):
    root: GroupedFieldSet
    subfields: dict[tuple[GraphQLObjectType, int], tuple[FieldDetailsList, Any]]
    """graphql-core's memo of collected subfields (`Executor._relevant_sub_fields`), keyed by the field lists' ids."""
    plans: dict[int, tuple[GroupedFieldSet, _Plan | None]]
    """The executor's memo of plans, keyed by the selections' ids."""


class SharedPlans:
    """The plans of one operation, kept across its requests (by the gateway's document cache) instead of worked
    out for each: the root's selection, the selections collected under it and their plans.

    Both memos are keyed by the identity of the selections they were made from, which stay alive in them; a
    request that starts from the shared root selection only meets selections from the memos, so they stop growing
    after the first request. What a selection holds depends on the document, the operation, the types and the
    values of the variables its directives read (`@skip(if: $x)`), so there is a variant per value of those, at
    most `MAX_VARIANTS`; beyond that, or a variant grown past `MAX_ENTRIES`, requests plan for themselves. A plan
    holds no request's state: guards are asked with each request's principal.
    """

    MAX_VARIANTS = 16
    MAX_ENTRIES = 5_000

    def __init__(self, document: DocumentNode) -> None:
        self.variables = tuple(sorted(_directive_variables(document)))
        self.variants: dict[tuple[Any, ...], _Variant] = {}
        self.selections: dict[tuple[Any, ...], tuple[tuple[Any, ...], bool]] = {}
        """`schema.selection`'s answers, keyed by the nodes' ids (the nodes kept with the answer), the path asked
        and the variables' key."""

    def key(self, variable_values: dict[str, Any]) -> tuple[Any, ...] | None:
        """What of a request's (coerced) variable values the operation's selections depend on; None when it cannot
        be a key (an unhashable value)."""
        key = tuple(variable_values.get(name) for name in self.variables)
        try:
            hash(key)
        except TypeError:
            return None
        return key

    def variant(self, variable_values: dict[str, Any], root: GroupedFieldSet) -> _Variant | None:
        """The variant for a request's (coerced) variable values, made from its `root` selection if new; None
        when the request is to plan for itself."""
        key = self.key(variable_values)
        if key is None:
            return None
        variant = self.variants.get(key)
        if variant is None:
            if len(self.variants) >= self.MAX_VARIANTS:
                return None
            variant = self.variants[key] = _Variant(root, {}, {})
        if len(variant.subfields) + len(variant.plans) > self.MAX_ENTRIES:
            return None
        return variant


class Executor(StrawberryGraphQLCoreExecutionContext):
    def __init__(self, *args: Any, plans: SharedPlans | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._plans: dict[int, tuple[GroupedFieldSet, _Plan | None]] = {}
        self._shared = plans

    @property
    def async_helpers(self) -> GraphQLResolveInfoHelpers:
        """The helpers a resolve info carries, made for each info instead of kept: graphql-core keeps them on the
        executor, and their methods bound to it made a reference cycle, which left each request's execution state
        to the cyclic garbage collector (with the loaders' cycle, about a sixth of a small query's time). A sub-executor
        (a shallow copy) makes them for itself; they act on the state it shares with the executor it was copied from."""
        return GraphQLResolveInfoHelpers(gather=self.gather_async_work, track=self.track_async_work)

    @async_helpers.setter
    def async_helpers(self, _helpers: GraphQLResolveInfoHelpers) -> None:
        """graphql-core's __init__ sets its own; they are made when asked for instead (above). Set at any other time
        (by a later graphql-core), they could not be honoured: that fails loudly rather than being ignored."""
        if "_plans" in self.__dict__:  # set after graphql-core's __init__
            raise AttributeError("Executor makes its async_helpers per resolve info; they cannot be replaced")

    def execute_root_grouped_field_set(
        self,
        root_type: GraphQLObjectType,
        root_value: Any,
        grouped_field_set: GroupedFieldSet,
        serially: bool,
        position_context: Any,
    ) -> AwaitableOrValue[dict[str, Any]]:
        """The root's fields, from the operation's shared selection and memos when it has them (the selection
        collected for this request is then dropped: it is the same)."""
        shared = self._shared
        if shared is not None and not serially and position_context is None:
            variant = shared.variant(self.variable_values.coerced, grouped_field_set)
            if variant is not None:
                grouped_field_set = variant.root
                self._relevant_sub_fields = variant.subfields
                self._plans = variant.plans
        return super().execute_root_grouped_field_set(
            root_type, root_value, grouped_field_set, serially, position_context
        )

    def execute_fields(
        self,
        parent_type: GraphQLObjectType,
        source_value: Any,
        path: Path | None,
        grouped_field_set: GroupedFieldSet,
        position_context: Any,
    ) -> AwaitableOrValue[dict[str, Any]]:
        plan = self._plan(parent_type, grouped_field_set)
        if plan is None:
            return super().execute_fields(parent_type, source_value, path, grouped_field_set, position_context)
        return self._execute_plan(parent_type, source_value, path, grouped_field_set, plan, position_context)

    def _execute_plan(
        self,
        parent_type: GraphQLObjectType,
        source_value: Any,
        path: Path | None,
        grouped_field_set: GroupedFieldSet,
        plan: _Plan,
        position_context: Any,
    ) -> AwaitableOrValue[dict[str, Any]]:
        values: dict[str, Any] = {}
        is_awaitable = self.is_awaitable
        context = self.context_value
        for response_name, leaf in plan.leaves:
            value = _complete(leaf, source_value, is_awaitable, context)
            if value is Undefined:  # an error: let graphql-core raise it, located as always
                return super().execute_fields(parent_type, source_value, path, grouped_field_set, position_context)
            values[response_name] = value
        if len(values) == len(plan.fields):
            return values
        return self._execute_rest(parent_type, source_value, path, plan, values, position_context)

    def _execute_rest(
        self,
        parent_type: GraphQLObjectType,
        source_value: Any,
        path: Path | None,
        plan: _Plan,
        values: dict[str, Any],
        position_context: Any,
    ) -> AwaitableOrValue[dict[str, Any]]:
        """graphql-core's `execute_fields` for the other fields, keeping the response keys in selection order."""
        if plan.rest is None:
            results: dict[str, Any] = {}
            fields = plan.fields
        else:
            results, fields = values, plan.rest  # type: ignore[assignment]  # no leaf among them
        is_awaitable = self.is_awaitable
        awaitable_fields: list[str] = []
        try:
            for response_name, field_details_list, entry in fields:
                if isinstance(entry, _Leaf):
                    results[response_name] = values[response_name]
                    continue
                field_path = Path(path, response_name, parent_type.name)
                if isinstance(entry, _Object):
                    result = self._execute_object(
                        entry, parent_type, source_value, field_details_list, field_path, position_context
                    )
                elif isinstance(entry, _List):
                    result = self._execute_list(
                        entry, parent_type, source_value, field_details_list, field_path, position_context
                    )
                else:
                    result = self.execute_field(
                        parent_type, source_value, field_details_list, field_path, position_context
                    )
                if result is not Undefined:
                    results[response_name] = result
                    if is_awaitable(result):
                        awaitable_fields.append(response_name)
        except Exception:
            if awaitable_fields:
                self.settle_in_background([results[field] for field in awaitable_fields])
            raise
        if not awaitable_fields:
            return results
        return self._gather(results, awaitable_fields)

    def _read(self, entry: _Object | _List, source: Any) -> Any:
        """The field's value, or `_SLOW` when graphql-core must execute it (also for a null it must reject)."""
        try:
            if entry.grants is not None and not permits(self.context_value.principal, entry.grants, source):
                return _SLOW
            value = entry.read(source)
        except Exception:
            return _SLOW
        if value is None or value is Undefined:
            return None if not isinstance(entry.field.type, GraphQLNonNull) else _SLOW
        return value

    def _execute_object(
        self,
        entry: _Object,
        parent_type: GraphQLObjectType,
        source: Any,
        field_details_list: FieldDetailsList,
        path: Path,
        position_context: Any,
    ) -> AwaitableOrValue[Any]:
        """An object-typed field read off its source: its selection executed directly, errors handled as
        `execute_field` handles them. Anything unusual goes to `execute_field`, which reads the field again."""
        value = self._read(entry, source)
        if value is None:
            return None
        if value is _SLOW or not entry.accepts(value):
            return self.execute_field(parent_type, source, field_details_list, path, position_context)
        try:
            completed = self._execute_subfields(entry, field_details_list, path, value, position_context)
        except Exception as raw_error:
            self.handle_field_error(raw_error, entry.field.type, field_details_list, path)
            return None
        if self.is_awaitable(completed):
            return self._await_value(completed, entry.field.type, field_details_list, path)
        return completed

    def _execute_list(
        self,
        entry: _List,
        parent_type: GraphQLObjectType,
        source: Any,
        field_details_list: FieldDetailsList,
        path: Path,
        position_context: Any,
    ) -> AwaitableOrValue[Any]:
        """A list of objects read off its source, completed item by item as graphql-core's
        `complete_iterable_value` does (errors at the item, then at the list); anything unusual in the list (a
        null, an awaitable, a value of another type) sends the whole field to `execute_field`."""
        items = self._read(entry, source)
        if items is None:
            return None
        accepts = entry.accepts
        if type(items) is not list or not all(accepts(item) for item in items):
            return self.execute_field(parent_type, source, field_details_list, path, position_context)
        item_type = entry.item_type
        is_awaitable = self.is_awaitable
        completed: list[Any] = []
        awaitable_indices: list[int] = []
        try:
            for index, item in enumerate(items):
                item_path = path.add_key(index, None)
                try:
                    value = self._execute_subfields(entry, field_details_list, item_path, item, position_context)
                except Exception as raw_error:
                    self.handle_field_error(raw_error, item_type, field_details_list, item_path)
                    value = None
                else:
                    if is_awaitable(value):
                        value = self._await_value(value, item_type, field_details_list, item_path)
                        awaitable_indices.append(index)
                completed.append(value)
        except Exception as raw_error:
            if awaitable_indices:
                self.settle_in_background([completed[index] for index in awaitable_indices])
            self.handle_field_error(raw_error, entry.field.type, field_details_list, path)
            return None
        if not awaitable_indices:
            return completed
        return self._await_list(completed, awaitable_indices, entry.field.type, field_details_list, path)

    def _execute_subfields(
        self,
        entry: _Object | _List,
        field_details_list: FieldDetailsList,
        path: Path,
        value: Any,
        position_context: Any,
    ) -> AwaitableOrValue[dict[str, Any]]:
        """`collect_and_execute_subfields`, straight to the selection's plan unless something is deferred."""
        if not entry.selection:
            grouped_field_set, new_defer_usages, _forbidden = self.collect_subfields(entry.type, field_details_list)
            if new_defer_usages:
                entry.selection.append(_Selection(None, None))
            else:
                entry.selection.append(_Selection(grouped_field_set, self._plan(entry.type, grouped_field_set)))
        fields, plan = entry.selection[0]
        if fields is None or position_context is not None:
            return self.collect_and_execute_subfields(entry.type, field_details_list, path, value, position_context)
        if plan is None:
            return super().execute_fields(entry.type, value, path, fields, None)
        return self._execute_plan(entry.type, value, path, fields, plan, None)

    async def _await_value(
        self,
        completed: Awaitable[Any],
        return_type: GraphQLOutputType,
        field_details_list: FieldDetailsList,
        path: Path,
    ) -> Any:
        try:
            return await completed
        except Exception as raw_error:
            self.handle_field_error(raw_error, return_type, field_details_list, path)
            return None

    async def _await_list(
        self,
        completed: list[Any],
        awaitable_indices: list[int],
        return_type: GraphQLOutputType,
        field_details_list: FieldDetailsList,
        path: Path,
    ) -> list[Any] | None:
        try:
            if len(awaitable_indices) == 1:
                index = awaitable_indices[0]
                completed[index] = await completed[index]
            else:
                awaited = await gather_with_cancel(*(completed[index] for index in awaitable_indices))
                for index, value in zip(awaitable_indices, awaited, strict=True):
                    completed[index] = value
        except Exception as raw_error:
            self.handle_field_error(raw_error, return_type, field_details_list, path)
            return None
        return completed

    @staticmethod
    async def _gather(results: dict[str, Any], awaitable_fields: list[str]) -> dict[str, Any]:
        if len(awaitable_fields) == 1:
            field = awaitable_fields[0]
            results[field] = await results[field]
        else:
            awaited = await gather_with_cancel(*(results[field] for field in awaitable_fields))
            results.update(zip(awaitable_fields, awaited, strict=True))
        return results

    def _plan(self, parent_type: GraphQLObjectType, grouped_field_set: GroupedFieldSet) -> _Plan | None:
        """The plan for this selection (memoized for the request, as graphql-core memoizes the selection itself);
        None when no field takes the short path."""
        cached = self._plans.get(id(grouped_field_set))
        if cached is not None:
            return cached[1]
        plan: _Plan | None = None
        if self.middleware_manager is None or not self.middleware_manager.middlewares:
            entries = [(name, fields, _short_path(parent_type, fields)) for name, fields in grouped_field_set.items()]
            if any(entry is not None for _name, _fields, entry in entries):
                plan = _planned(entries)
        self._plans[id(grouped_field_set)] = (grouped_field_set, plan)  # kept alive so that its id stays unique
        return plan


def _planned(entries: list[tuple[str, FieldDetailsList, _Leaf | _Object | _List | None]]) -> _Plan:
    leaves = [(name, entry) for name, _fields, entry in entries if isinstance(entry, _Leaf)]
    rest = entries[len(leaves) :]
    if any(isinstance(entry, _Leaf) for _name, _fields, entry in rest):
        return _Plan(entries, leaves, None)
    return _Plan(entries, leaves, rest)  # type: ignore[arg-type]  # no leaf in `rest`


def _complete(leaf: _Leaf, source: Any, is_awaitable: Callable[[Any], bool], context: Any) -> Any:
    """The field's completed value, or Undefined where graphql-core would raise (or might: anything unusual)."""
    try:
        if leaf.grants is not None and not permits(context.principal, leaf.grants, source):
            return Undefined  # the guard raises its error
        value: Any = leaf.read(source)
        kind = type(value)
        # What a built-in scalar answers unchanged (an Int if in range): no need to ask it.
        if kind is leaf.plain and (kind is not int or GRAPHQL_MIN_INT <= value <= GRAPHQL_MAX_INT):
            return value
        if value is _SLOW:
            return Undefined
        if value is None or value is Undefined:
            return Undefined if leaf.non_null else None
        if isinstance(value, Exception) or is_awaitable(value):  # graphql-core raises the one, awaits the other
            return Undefined
        coerced = leaf.type.coerce_output_value(value)
    except Exception:
        return Undefined
    return Undefined if coerced is None else coerced


def _short_path(parent_type: GraphQLObjectType, fields: FieldDetailsList) -> _Leaf | _Object | _List | None:
    field_name = fields[0].node.name.value
    if field_name == TYPENAME:
        name = parent_type.name
        return _Leaf(lambda _source: name, None, GraphQLString, True, str)
    field: GraphQLField | None = parent_type.fields.get(field_name)
    if field is None:
        return None
    reader = _reader(field)
    if reader is None:
        return None
    read, grants = reader
    type_ = field.type
    non_null = isinstance(type_, GraphQLNonNull)
    inner = type_.of_type if isinstance(type_, GraphQLNonNull) else type_
    if isinstance(inner, GraphQLObjectType):
        accepts = _acceptor(inner)
        return None if accepts is None else _Object(read, grants, inner, field, accepts, [])
    if isinstance(inner, GraphQLList):
        item_type = inner.of_type
        item = item_type.of_type if isinstance(item_type, GraphQLNonNull) else item_type
        accepts = _acceptor(item) if isinstance(item, GraphQLObjectType) else None
        if accepts is None or any(details.node.directives for details in fields):  # e.g. @stream
            return None
        return _List(read, grants, item, field, item_type, accepts, [])
    if is_leaf_type(inner):
        return _Leaf(read, grants, inner, non_null, PLAIN.get(inner))
    return None


def _reader(field: GraphQLField) -> tuple[Callable[[Any], Any], tuple[str, ...] | None] | None:
    """How the short path reads `field` off its parent: Strawberry's default resolver for a plain field, the
    attribute a prefetched field declares (`_SLOW` when unset); and the grants of the field's guard, which the
    executor asks with the request's principal first (`_SLOW` when it refuses). None for any other field."""
    definition = field.extensions.get(DEFINITION)
    if not isinstance(definition, StrawberryField) or definition.extensions:
        return None
    resolve = field.resolve
    guard = guard_of(resolve) if resolve is not None else None
    if guard is not None:
        resolve = guard.resolve
    read: Callable[[Any], Any]
    attribute = prefetched_attribute(definition)
    if definition.is_basic_field and getattr(resolve, "_is_default", False):  # not a wrapper of ours or anyone's
        read_default, python_name = definition.default_resolver, definition.python_name
        read = attrgetter(python_name) if read_default is getattr else partial(_read_with, read_default, python_name)
    elif attribute is not None and not field.args:
        read = partial(_read_prefetched, attrgetter(attribute))
    else:
        return None
    return read, guard.grants if guard is not None else None


def _read_with(read: Callable[[Any, str], Any], name: str, source: Any) -> Any:
    return read(source, name)


def _read_prefetched(read: Callable[[Any], Any], source: Any) -> Any:
    value = read(source)
    return _SLOW if value is None else value


def _acceptor(type_: GraphQLObjectType) -> Callable[[Any], bool] | None:
    """A check that a value completes as `type_` without graphql-core's help: its type's own check if it is
    Strawberry's (which ignores the resolve info), else an exact class match (anything else takes the long way).
    None when the type has a check of someone else's."""
    definition = type_.extensions.get(DEFINITION)
    if not isinstance(definition, StrawberryObjectDefinition):
        return None
    is_type_of = type_.is_type_of
    if is_type_of is None:
        classes = frozenset({definition.origin, *((definition.concrete_of.origin,) if definition.concrete_of else ())})
        return lambda value: type(value) in classes
    if getattr(is_type_of, "__qualname__", "") != STRAWBERRY_IS_TYPE_OF:
        return None
    return lambda value: is_type_of(value, None) is True  # type: ignore[arg-type]  # Strawberry's ignores it


def _directive_variables(document: DocumentNode) -> set[str]:
    """The variables any directive of `document` reads (`@include(if: $show)`)."""
    names: set[str] = set()

    class Reader(Visitor):
        def enter_directive(self, node: DirectiveNode, *_args: Any) -> None:
            for argument in node.arguments or ():
                names.update(_variables_in(argument.value))

    visit(document, Reader())
    return names


def _variables_in(value: ValueNode) -> set[str]:
    if isinstance(value, VariableNode):
        return {value.name.value}
    if isinstance(value, ListValueNode):
        return set().union(*(_variables_in(item) for item in value.values))
    if isinstance(value, ObjectValueNode):
        return set().union(*(_variables_in(field.value) for field in value.fields))
    return set()
