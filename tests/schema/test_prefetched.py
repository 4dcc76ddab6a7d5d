"""Fields declared `prefetched` answer the attribute a look-ahead set, which is what lets the executor read it."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from graphql import GraphQLObjectType
from strawberry.types.field import StrawberryField

from schema.build import build_schema
from schema.permissions import DEFINITION
from schema.prefetched import prefetched_attribute


def declaring() -> dict[str, tuple[StrawberryField, str]]:
    fields = {}
    for type_ in build_schema()._schema.type_map.values():
        if not isinstance(type_, GraphQLObjectType):
            continue
        for name, field in type_.fields.items():
            definition = field.extensions.get(DEFINITION)
            attribute = prefetched_attribute(definition) if isinstance(definition, StrawberryField) else None
            if attribute is not None:
                assert isinstance(definition, StrawberryField)
                fields[f"{type_.name}.{name}"] = (definition, attribute)
    return fields


def test_the_relations_order_prefetch_loads_are_declared() -> None:
    assert set(declaring()) == {"Order.customer", "Order.lines", "OrderLine.product"}


def test_a_declared_resolver_returns_its_attribute_when_set() -> None:
    for name, (definition, attribute) in declaring().items():
        resolver = definition.base_resolver
        assert resolver is not None, name
        assert not resolver.is_async, name
        assert not definition.arguments, name  # the executor reads the attribute whatever the arguments
        value = object()
        read: Any = resolver.wrapped_func
        assert read(SimpleNamespace(**{attribute: value}), None) is value, name
