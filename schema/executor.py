"""graphql-core's executor with a short path for plain fields.

Most fields of a typical answer are read straight off an object: `Order.number`, `Order.total`, `Money.amount`.
For each, graphql-core builds a resolve info, calls Strawberry's default resolver through two wrappers and
completes the value in several nested calls: a few µs a field, most of a 50-order page's execution. Here such a
field is read and completed directly.

A field takes the short path when no resolve middleware is installed and it is `__typename`, or a Strawberry field
without resolver, extension or permission guard whose type is a (non-null) scalar, enum or object type:
- Scalars and enums: an object's are read and coerced first. They run no code of ours, so reading them early
  changes nothing. When one would be an error (null for a non-null field, a value the scalar refuses), the whole
  object is executed by graphql-core instead, which raises exactly the error it always did.
- Objects: the value's selection is executed at once (`is_type_of` checked), errors located and propagated as
  `execute_field` does; a null for a non-null field, or anything unusual, goes to `execute_field`.
Every other field (resolvers, lists, interfaces and unions) is executed by graphql-core, in order, as before.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, NamedTuple

from graphql import (
    GraphQLField,
    GraphQLLeafType,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLString,
    Undefined,
    is_leaf_type,
)
from graphql.execution.collect_fields import FieldDetailsList, GroupedFieldSet
from graphql.execution.executor import to_nodes
from graphql.pyutils import AwaitableOrValue, Path, gather_with_cancel
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext
from strawberry.types.field import StrawberryField

from schema.permissions import DEFINITION

TYPENAME = "__typename"


class _Leaf(NamedTuple):
    read: Callable[[Any], Any]
    type: GraphQLLeafType
    non_null: bool


class _Object(NamedTuple):
    read: Callable[[Any], Any]
    type: GraphQLObjectType
    field: GraphQLField


_Plan = list[tuple[str, FieldDetailsList, _Leaf | _Object | None]]
"""Per response key: its fields and, for a short-path field, how to read it (None: graphql-core executes it)."""


class Executor(StrawberryGraphQLCoreExecutionContext):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._plans: dict[int, tuple[GroupedFieldSet, _Plan | None]] = {}

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
        values: dict[str, Any] = {}
        for response_name, _fields, entry in plan:
            if not isinstance(entry, _Leaf):
                continue
            value = _complete(entry, source_value, self.is_awaitable)
            if value is Undefined:  # an error: let graphql-core raise it, located as always
                return super().execute_fields(parent_type, source_value, path, grouped_field_set, position_context)
            values[response_name] = value
        if len(values) == len(plan):
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
        results: dict[str, Any] = {}
        is_awaitable = self.is_awaitable
        awaitable_fields: list[str] = []
        try:
            for response_name, field_details_list, entry in plan:
                if isinstance(entry, _Leaf):
                    results[response_name] = values[response_name]
                    continue
                field_path = Path(path, response_name, parent_type.name)
                if isinstance(entry, _Object):
                    result = self._execute_object(
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
        try:
            value = entry.read(source)
        except Exception:
            return self.execute_field(parent_type, source, field_details_list, path, position_context)
        if value is Undefined:
            value = None
        if value is None and not isinstance(entry.field.type, GraphQLNonNull):
            return None
        if value is None or isinstance(value, Exception) or self.is_awaitable(value):
            return self.execute_field(parent_type, source, field_details_list, path, position_context)
        is_type_of = entry.type.is_type_of
        if is_type_of is not None:
            info = self.build_resolve_info(entry.field, to_nodes(field_details_list), parent_type, path)
            matches = is_type_of(value, info)
            if matches is not True:
                if isinstance(matches, Coroutine):
                    matches.close()  # asked again, and awaited, by `execute_field`
                return self.execute_field(parent_type, source, field_details_list, path, position_context)
        try:
            completed = self.collect_and_execute_subfields(
                entry.type, field_details_list, path, value, position_context
            )
        except Exception as raw_error:
            self.handle_field_error(raw_error, entry.field.type, field_details_list, path)
            return None
        if self.is_awaitable(completed):
            return self._await_object(completed, entry.field, field_details_list, path)
        return completed

    async def _await_object(
        self, completed: Awaitable[Any], field: GraphQLField, field_details_list: FieldDetailsList, path: Path
    ) -> Any:
        try:
            return await completed
        except Exception as raw_error:
            self.handle_field_error(raw_error, field.type, field_details_list, path)
            return None

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
            plan = [
                (name, fields, _short_path(parent_type, fields[0].node.name.value))
                for name, fields in grouped_field_set.items()
            ]
            if all(entry is None for _name, _fields, entry in plan):
                plan = None
        self._plans[id(grouped_field_set)] = (grouped_field_set, plan)  # kept alive so that its id stays unique
        return plan


def _complete(leaf: _Leaf, source: Any, is_awaitable: Callable[[Any], bool]) -> Any:
    """The field's completed value, or Undefined where graphql-core would raise (or might: anything unusual)."""
    try:
        value = leaf.read(source)
        if value is None or value is Undefined:
            return Undefined if leaf.non_null else None
        if isinstance(value, Exception) or is_awaitable(value):  # graphql-core raises the one, awaits the other
            return Undefined
        coerced = leaf.type.coerce_output_value(value)
    except Exception:
        return Undefined
    return Undefined if coerced is None else coerced


def _short_path(parent_type: GraphQLObjectType, field_name: str) -> _Leaf | _Object | None:
    if field_name == TYPENAME:
        name = parent_type.name
        return _Leaf(lambda _source: name, GraphQLString, True)
    field: GraphQLField | None = parent_type.fields.get(field_name)
    if field is None:
        return None
    definition = field.extensions.get(DEFINITION)
    if (
        not isinstance(definition, StrawberryField)
        or not definition.is_basic_field
        or not getattr(field.resolve, "_is_default", False)  # a guard or other wrapper replaced Strawberry's
    ):
        return None
    type_ = field.type
    non_null = isinstance(type_, GraphQLNonNull)
    inner = type_.of_type if isinstance(type_, GraphQLNonNull) else type_
    read_default = definition.default_resolver
    python_name = definition.python_name

    def read(source: Any) -> Any:
        return read_default(source, python_name)

    if isinstance(inner, GraphQLObjectType):
        return _Object(read, inner, field)
    if not is_leaf_type(inner):
        return None
    return _Leaf(read, inner, non_null)
