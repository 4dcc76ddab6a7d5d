"""The `/graphql` endpoint: GraphQL over HTTP (POST JSON, GET for queries) and GraphiQL for browsers.

Owned here rather than Strawberry's view so status codes, error shapes and encoding are exactly ours:
every refusal is a GraphQL error object with `extensions.code`, and client mistakes are 4xx, never 500.
"""

from __future__ import annotations

import logging
from typing import Any

import orjson
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send
from strawberry import Schema
from strawberry.exceptions import MissingQueryError
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError
from strawberry.types.graphql import OperationType

from gateway.errors import BAD_USER_INPUT, format_error, is_request_error, request_error
from gateway.graphiql import render_graphiql
from gateway.persisted_queries import PersistedQueries, PersistedQueryError
from gateway.request import RequestError, read_params, response_media_type, wants_html
from integrations.store.session import StoreSession
from resolvers.services import Services
from schema.context import Context

logger = logging.getLogger("gateway.endpoint")

GET_OPERATIONS = frozenset({OperationType.QUERY})
POST_OPERATIONS = frozenset({OperationType.QUERY, OperationType.MUTATION})


class GraphQLEndpoint:
    def __init__(
        self,
        schema: Schema,
        sessionmaker: async_sessionmaker[AsyncSession],
        *,
        max_body_bytes: int,
        graphiql: bool,
        expose_internal_errors: bool,
    ) -> None:
        self.schema = schema
        self.sessionmaker = sessionmaker
        self.max_body_bytes = max_body_bytes
        self.graphiql = graphiql
        self.expose_internal_errors = expose_internal_errors
        self.services: Services | None = None
        """Set by the app's lifespan once the payment provider, cache and worker are open."""
        self.persisted_queries: PersistedQueries | None = None
        """Set by the app's lifespan (it needs the cache store)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = await self.handle(Request(scope, receive))
        await response(scope, receive, send)

    async def handle(self, request: Request) -> Response:
        if request.method not in ("GET", "POST"):
            return _error(405, "GraphQL is served over GET and POST", headers={"Allow": "GET, POST"})
        if self.graphiql and wants_html(request):
            return render_graphiql(request.url.path)
        media_type = response_media_type(request.headers.get("accept"))
        if media_type is None:
            return _error(406, "Accept application/graphql-response+json or application/json")
        try:
            params = await read_params(request, max_body_bytes=self.max_body_bytes)
        except RequestError as error:
            return _error(error.status, error.message, headers=error.headers, media_type=media_type)

        if self.services is None or self.persisted_queries is None:
            return _error(503, "The gateway is starting", code="SERVICE_UNAVAILABLE", media_type=media_type)
        try:
            persisted = await self.persisted_queries.resolve(params.query, params.extensions)
        except PersistedQueryError as error:
            return _error(error.status, error.message, code=error.code, headers=error.headers, media_type=media_type)
        context = Context(store=StoreSession(self.sessionmaker), services=self.services)
        try:
            result = await self.schema.execute(
                persisted.query if persisted is not None else params.query,
                variable_values=params.variables,
                context_value=context,
                operation_name=params.operation_name,
                allowed_operation_types=GET_OPERATIONS if request.method == "GET" else POST_OPERATIONS,
                operation_extensions=params.extensions,
            )
        except MissingQueryError:
            return _error(400, "No GraphQL query found in the request", media_type=media_type)
        except CannotGetOperationTypeError as error:
            return _error(400, error.as_http_error_reason(), code=BAD_USER_INPUT, media_type=media_type)
        except InvalidOperationTypeError:
            return _error(405, "Mutations must be sent with POST", headers={"Allow": "POST"}, media_type=media_type)
        finally:
            await context.store.close()

        payload: dict[str, Any] = {}
        if result.errors:
            payload["errors"] = [format_error(e, expose_internal=self.expose_internal_errors) for e in result.errors]
        status = 400 if is_request_error(result.data, result.errors) else 200
        if status == 200 and persisted is not None and persisted.register is not None:
            await self.persisted_queries.register(persisted.register, persisted.query)  # parsed and validated
        if status == 200:
            payload["data"] = result.data
        if result.extensions:
            payload["extensions"] = result.extensions
        return Response(orjson.dumps(payload), status_code=status, media_type=media_type)


def _error(
    status: int,
    message: str,
    *,
    code: str | None = None,
    headers: dict[str, str] | None = None,
    media_type: str = "application/json",
) -> Response:
    error = request_error(message) if code is None else request_error(message, code)
    return Response(orjson.dumps({"errors": [error]}), status_code=status, headers=headers, media_type=media_type)
