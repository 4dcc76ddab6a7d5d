"""Compose the per-domain root types into the schema."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

import strawberry
from graphql import GraphQLError
from strawberry.extensions import SchemaExtension
from strawberry.schema.config import StrawberryConfig
from strawberry.types import ExecutionContext

from schema.audit.queries import AuditQuery
from schema.audit.trail import audit_mutations
from schema.customer.data import CustomerDataMutation
from schema.customer.mutations import CustomerMutation
from schema.customer.queries import CustomerQuery
from schema.executor import Executor
from schema.node_query import NodeQuery
from schema.order.mutations import OrderMutation
from schema.order.queries import OrderQuery
from schema.permissions import enforce
from schema.product.mutations import ProductMutation
from schema.product.queries import ProductQuery
from schema.report.queries import ReportQuery

logger = logging.getLogger("schema")


@strawberry.type(description="Read the commerce graph: customers, products and orders.")
class Query(NodeQuery, CustomerQuery, ProductQuery, OrderQuery, ReportQuery, AuditQuery):
    pass


@strawberry.type(description="Change the commerce graph. Input problems come back as `userErrors`.")
class Mutation(CustomerMutation, CustomerDataMutation, ProductMutation, OrderMutation):
    pass


class GatewaySchema(strawberry.Schema):
    def process_errors(self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None) -> None:
        """Log at debug level only: client mistakes are not server errors, and unexpected exceptions are
        logged once, with their traceback and error id, where the response is built."""
        for error in errors:
            logger.debug("graphql error at %s: %s", error.path, error.message)


def build_schema(
    extensions: Sequence[type[SchemaExtension] | Callable[[], SchemaExtension]] = (),
) -> strawberry.Schema:
    """The gateway's schema; `extensions` (caching, limits, error codes…) are supplied by the server."""
    schema = GatewaySchema(
        query=Query,
        mutation=Mutation,
        extensions=list(extensions),
        config=StrawberryConfig(auto_camel_case=True),
        execution_context_class=Executor,
    )
    enforce(schema._schema)
    audit_mutations(schema._schema)  # outside the guards: refusals are observed too (the AuditLog extension)
    return schema
